import * as m0002 from '../db/migrations/0002-erasure.ts';
import type { DomainPlugin } from '../plugin/registry.ts';
import { registerDeletionRoutes } from './deletion.routes.ts';
import { createDeletionService, type DeletionService } from './deletion.service.ts';
import { createRedactionBacklogTask } from './redaction-backlog.ts';
import { createRedactionStep } from './redaction.step.ts';
import { registerSettingsRoutes } from './settings.routes.ts';
import { createSettingsService } from './settings.service.ts';

declare module '../plugin/registry.ts' {
  interface Ports {
    /** Customer deletion (preview, DELETE, receipt), every registered step included. */
    deletion: DeletionService;
  }
}

/** Deletion (preview, DELETE, receipts), redaction at deletion, settings, the redaction backlog. */
export const erasurePlugin: DomainPlugin = {
  name: 'erasure',
  migrations: { '0002-erasure': m0002 },
  plug(ctx, r) {
    const deletion = createDeletionService(ctx, () => r.registry().deletionSteps);
    r.provide('deletion', deletion);
    r.routes((app) => registerDeletionRoutes(app, deletion));
    r.deletionStep(createRedactionStep(ctx));

    r.settingsSection({ fields: ['automaticPersonalDataDeletion', 'redactionPolicy', 'confirmKeepIdentifying'] });
    const settings = createSettingsService(ctx, () => r.registry().settingsSections);
    r.routes((app) => registerSettingsRoutes(app, settings));
    r.retentionTask(createRedactionBacklogTask(ctx));
  },
};
