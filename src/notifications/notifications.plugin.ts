import * as m0004 from '../db/migrations/0004-notifications.ts';
import type { DomainPlugin } from '../plugin/registry.ts';
import { createCasesService, type CasesService } from './cases.service.ts';
import { registerDataDeletionRoutes } from './data-deletions.routes.ts';
import { createScheduler } from './scheduler.ts';

declare module '../plugin/registry.ts' {
  interface Ports {
    /** Deletion cases: the daily pass and the grace sweep (jobs, tests), the application API. */
    deletionCases: CasesService;
  }
}

/** Deletion cases, grace periods, the daily notification pass, the application API. */
export const notificationsPlugin: DomainPlugin = {
  name: 'notifications',
  migrations: { '0004-notifications': m0004 },
  plug(ctx, r) {
    const cases = createCasesService(ctx, { journal: r.port('erasureJournal') });
    r.provide('deletionCases', cases);
    r.licenseObserver(cases.observer);
    r.deletionStep(cases.deletionStep);
    r.job({ name: 'grace-periods', run: async () => cases.expireGracePeriods() });
    r.job({ name: 'deletion-notifications', run: async (actorKeyId) => cases.notifyDue({ actorKeyId }) });
    r.gauge(cases.refreshGauges);
    r.routes((app) => registerDataDeletionRoutes(app, cases));
    if (ctx.config.schedulerEnabled) {
      r.background(createScheduler(ctx, {
        expireGracePeriods: () => cases.expireGracePeriods(),
        notifyDue: (opts) => cases.notifyDue(opts),
      }));
    }
  },
};
