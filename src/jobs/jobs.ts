import { Type } from 'typebox';
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../http/auth.ts';
import { notFound } from '../http/errors.ts';
import { errors } from '../http/schemas.ts';

/**
 * Scheduled jobs, by name. Domains register theirs (grace-periods, deletion-notifications,
 * retention); the scheduler runs them on time and `POST /v1/jobs/{job}/run` runs one now.
 */
export interface Job {
  name: string;
  run(actorKeyId: string | null): Promise<Record<string, unknown>>;
}

export type JobRegistry = Map<string, Job>;

/** One part of the daily retention job; returns counts of what it did (no personal data). */
export interface RetentionTask {
  name: string;
  run(at: Date, actorKeyId: string | null): Promise<Record<string, number>>;
}

export function registerJobRoutes(app: FastifyInstance, jobs: JobRegistry) {
  app.post('/v1/jobs/:job/run', {
    config: { access: 'operator' },
    schema: {
      tags: ['jobs'], summary: 'Run a scheduled job now: grace-periods, deletion-notifications or retention',
      params: Type.Object({ job: Type.String({ maxLength: 100 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ job: Type.String(), result: Type.Record(Type.String(), Type.Unknown()) }), ...errors(404) },
    },
  }, async (request) => {
    const name = (request.params as { job: string }).job;
    const job = jobs.get(name);
    if (!job) throw notFound(`Job "${name}" (known: ${[...jobs.keys()].sort().join(', ') || 'none'})`);
    return { job: name, result: await job.run(principalOf(request).keyId) };
  });
}
