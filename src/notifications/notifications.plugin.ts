import * as m0004 from '../db/migrations/0004-notifications.ts';
import * as m0009 from '../db/migrations/0009-partners.ts';
import type { DomainPlugin } from '../plugin/registry.ts';
import { createCasesService, type CasesService } from './cases.service.ts';
import { registerDataDeletionRoutes } from './data-deletions.routes.ts';
import { canonicalTimeZone } from './schedule.ts';
import { createScheduler } from './scheduler.ts';
import { createGraceDeletion } from './grace-deletion.ts';
import { validation } from '../http/errors.ts';
import { SETTINGS_SECTIONS } from '../settings/settings.repo.ts';

declare module '../plugin/registry.ts' {
  interface Ports {
    /** Deletion cases: the daily pass and the grace sweep (jobs, tests), the application API. */
    deletionCases: CasesService;
  }
}

/** Deletion cases, grace periods, the daily notification pass, the application API. */
export const notificationsPlugin: DomainPlugin = {
  name: 'notifications',
  // 0009 also adds erasure_journal.outcome (backups' table): the journal records each confirmation's outcome.
  migrations: { '0004-notifications': m0004, '0009-partners': m0009 },
  plug(ctx, r) {
    const cases = createCasesService(ctx, { journal: r.port('erasureJournal') });
    r.provide('deletionCases', cases);
    r.settingsSection({
      fields: SETTINGS_SECTIONS.notifications,
      normalize(patch) {
        if (typeof patch.notificationTimeZone !== 'string') return patch;
        const tz = canonicalTimeZone(patch.notificationTimeZone);
        if (!tz) throw validation(`body.notificationTimeZone: "${patch.notificationTimeZone}" is not an IANA time zone (e.g. "Europe/Berlin", "UTC")`);
        return { ...patch, notificationTimeZone: tz };
      },
    });
    r.licenseObserver(cases.observer);
    r.deletionStep(cases.deletionStep);
    const graceDeletion = createGraceDeletion(ctx, r.port('deletion'));
    // Grace periods that ended become required; then, with deleteCustomerWhenGraceEnds on, customers
    // whose every case has left its grace period are deleted by the system actor.
    const gracePeriods = async () => ({ ...await cases.expireGracePeriods(), customerDeletions: await graceDeletion.run() });
    r.job({ name: 'grace-periods', run: gracePeriods });
    r.job({ name: 'deletion-notifications', run: async (actorKeyId) => cases.notifyDue({ actorKeyId }) });
    r.gauge(cases.refreshGauges);
    r.routes((app) => registerDataDeletionRoutes(app, cases));
    if (ctx.config.schedulerEnabled) {
      // Through the jobs domain's record: every scheduled pass, and every sweep that did something, is a recorded run.
      const jobRuns = r.port('jobRuns');
      const scheduled = { trigger: 'scheduled', actorKeyId: null } as const;
      r.background(createScheduler(ctx, {
        // Every minute on every instance: a sweep that changed nothing is not kept (failures are).
        expireGracePeriods: () => jobRuns().run('grace-periods', { ...scheduled, keepIdle: false }),
        notifyDue: (opts) => jobRuns().record('deletion-notifications', scheduled, () => cases.notifyDue(opts)),
      }));
    }
  },
};
