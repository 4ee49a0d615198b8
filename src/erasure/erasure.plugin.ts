import type { Ctx } from '../context.ts';
import type { ServicesCore } from '../services.ts';
import { createRedactionBacklogTask } from './redaction-backlog.ts';
import { createRedactionStep } from './redaction.step.ts';
import { getSettings } from './settings.repo.ts';
import { registerSettingsRoutes } from './settings.routes.ts';
import { createSettingsService } from './settings.service.ts';

/** Redaction at deletion, settings, the redaction backlog. */
export function plugErasure(ctx: Ctx, s: ServicesCore): void {
  const settings = createSettingsService(ctx);
  s.extraRoutes.push((app) => registerSettingsRoutes(app, settings));
  s.shared.settings = settings;
  s.shared.getSettings = () => getSettings(ctx.db);
  s.deletionSteps.push(createRedactionStep(ctx));
  s.retentionTasks.push(createRedactionBacklogTask(ctx));
}
