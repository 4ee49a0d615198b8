import { Type } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { notFound } from '../http/errors.ts';
import { errors } from '../http/schemas.ts';

import type { Job, TypedApp } from '../plugin/registry.ts';

export type { Job, RetentionTask } from '../plugin/registry.ts';

/**
 * `POST /v1/jobs/{job}/run`: runs one of the jobs domains registered (grace-periods,
 * deletion-notifications, retention) now.
 */
export function registerJobRoutes(app: TypedApp, jobsOf: () => ReadonlyMap<string, Job>) {
  app.post('/v1/jobs/:job/run', {
    config: { access: 'operator' },
    schema: { operationId: 'runJob',
      tags: ['jobs'], summary: 'Run a scheduled job now: grace-periods, deletion-notifications or retention',
      params: Type.Object({ job: Type.String({ maxLength: 100 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ job: Type.String(), result: Type.Record(Type.String(), Type.Unknown()) }), ...errors(404) },
    },
  }, async (request) => {
    const name = request.params.job;
    const jobs = jobsOf();
    const job = jobs.get(name);
    if (!job) throw notFound(`Job "${name}" (known: ${[...jobs.keys()].sort().join(', ') || 'none'})`);
    return { job: name, result: await job.run(principalOf(request).keyId) };
  });
}
