import type { DomainPlugin } from '../plugin/registry.ts';
import { registerJobRoutes } from './jobs.ts';
import { retentionScheduler } from './retention-schedule.ts';

/**
 * Jobs: `POST /v1/jobs/{job}/run` for every job any domain registered, and the daily `retention`
 * job made of every domain's retention tasks (run once a day by its scheduler).
 */
export const jobsPlugin: DomainPlugin = {
  name: 'jobs',
  plug(ctx, r) {
    const retention = {
      name: 'retention',
      async run(actorKeyId: string | null) {
        const at = ctx.clock.now();
        const result: Record<string, unknown> = {};
        for (const task of r.registry().retentionTasks) result[task.name] = await task.run(at, actorKeyId);
        return result;
      },
    };
    r.job(retention);
    if (ctx.config.schedulerEnabled) r.background(retentionScheduler(ctx, retention));
    r.routes((app) => registerJobRoutes(app, () => r.registry().jobs));
  },
};
