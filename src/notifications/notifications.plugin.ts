import type { Ctx } from '../context.ts';
import type { ServicesCore } from '../services.ts';
import { createCasesService } from './cases.service.ts';
import { registerDataDeletionRoutes } from './data-deletions.routes.ts';
import { createScheduler } from './scheduler.ts';

/** Deletion cases, grace periods, the daily notification pass, the application API. */
export function plugNotifications(ctx: Ctx, s: ServicesCore): void {
  const cases = createCasesService(ctx);
  s.licenseObservers.push(cases.observer);
  s.deletionSteps.push(cases.deletionStep);
  s.jobs.set('grace-periods', { name: 'grace-periods', run: async () => cases.expireGracePeriods() });
  s.jobs.set('deletion-notifications', {
    name: 'deletion-notifications', run: async (actorKeyId) => cases.notifyDue({ actorKeyId }),
  });
  s.gaugeRefreshers.push(cases.refreshGauges);
  s.extraRoutes.push((app) => registerDataDeletionRoutes(app, cases));
  s.shared.cases = cases;
  if (ctx.config.schedulerEnabled) {
    s.background.push(createScheduler(ctx, {
      expireGracePeriods: () => cases.expireGracePeriods(),
      notifyDue: (opts) => cases.notifyDue(opts),
    }));
  }
}
