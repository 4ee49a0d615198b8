import * as m0015 from '../db/migrations/0015-job-runs.ts';
import type { DomainPlugin } from '../plugin/registry.ts';
import { createJobRuns } from './job-runs.ts';
import { registerJobRoutes } from './jobs.ts';
import { retentionScheduler } from './retention-schedule.ts';

/**
 * Jobs: `POST /v1/jobs/{job}/run` for every job any domain registered, the daily `retention`
 * job made of every domain's retention tasks (run once a day by its scheduler), and the record of
 * every run (`jobRuns` port: the API and every scheduler run jobs through it; `GET /v1/jobs`,
 * `GET /v1/job-runs`). Migration 0015 extends job_runs (deployment's table, 0007) for that record.
 */
export const jobsPlugin: DomainPlugin = {
  name: 'jobs',
  migrations: { '0015-job-runs': m0015 },
  plug(ctx, r) {
    const runs = createJobRuns(ctx, () => r.registry().jobs);
    r.provide('jobRuns', runs.port);
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
    if (ctx.config.schedulerEnabled) r.background(retentionScheduler(ctx, () => runs.port.run('retention', { trigger: 'scheduled', actorKeyId: null })));
    r.routes((app) => registerJobRoutes(app, runs));
  },
};
