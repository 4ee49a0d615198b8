import type { Ctx } from '../context.ts';
import type { ServicesCore } from '../services.ts';
import { createCasesService } from './cases.service.ts';
import { registerDataDeletionRoutes } from './data-deletions.routes.ts';
import { createScheduler } from './scheduler.ts';
import { createGraceDeletion } from './grace-deletion.ts';

/** Deletion cases, grace periods, the daily notification pass, the application API. */
export function plugNotifications(ctx: Ctx, s: ServicesCore): void {
  const cases = createCasesService(ctx);
  s.licenseObservers.push(cases.observer);
  s.deletionSteps.push(cases.deletionStep);
  const graceDeletion = createGraceDeletion(ctx, s.deletion);
  // Grace periods that ended become required; then, with deleteCustomerWhenGraceEnds on, customers
  // whose every case has left its grace period are deleted by the system actor.
  const gracePeriods = async () => ({ ...await cases.expireGracePeriods(), customerDeletions: await graceDeletion.run() });
  s.jobs.set('grace-periods', { name: 'grace-periods', run: gracePeriods });
  s.jobs.set('deletion-notifications', {
    name: 'deletion-notifications', run: async (actorKeyId) => cases.notifyDue({ actorKeyId }),
  });
  s.gaugeRefreshers.push(cases.refreshGauges);
  s.extraRoutes.push((app) => registerDataDeletionRoutes(app, cases));
  s.shared.cases = cases;
  if (ctx.config.schedulerEnabled) {
    s.background.push(createScheduler(ctx, {
      expireGracePeriods: gracePeriods,
      notifyDue: (opts) => cases.notifyDue(opts),
    }));
  }
}
