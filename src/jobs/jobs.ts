import { Type } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { ListOf, NoQuery, PageQuerySchema, Timestamp, Uuid, errors } from '../http/schemas.ts';
import type { TypedApp } from '../plugin/registry.ts';
import type { JobRunsService } from './job-runs.ts';

export type { Job, RetentionTask } from '../plugin/registry.ts';

const tags = ['jobs'];

const Counts = Type.Record(Type.String(), Type.Unknown(), { description: "The job's counts: numbers and booleans, in nested objects; never text" });

export const JobRunSchema = Type.Object({
  id: Uuid,
  job: Type.String(),
  trigger: Type.Union([Type.Literal('manual'), Type.Literal('scheduled')]),
  actorKeyId: Type.Union([Uuid, Type.Null()], { description: 'The operator key of a manual run' }),
  instanceId: Type.String({ description: 'The Lethe instance (process) that ran it' }),
  startedAt: Timestamp,
  finishedAt: Type.Union([Timestamp, Type.Null()]),
  durationMs: Type.Union([Type.Integer(), Type.Null()]),
  outcome: Type.Union([Type.Literal('running'), Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('abandoned')], {
    description: 'abandoned: still running 6 hours after it started (its process died mid-run)',
  }),
  result: Type.Union([Counts, Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()], { description: 'A failed run\'s error code (e.g. "TypeError", "DatabaseError: 23505"), never its message' }),
}, { additionalProperties: false });

/**
 * The jobs API: `POST /v1/jobs/{job}/run` runs one of the jobs domains registered
 * (grace-periods, deletion-notifications, retention) now; `GET /v1/jobs` and `GET /v1/job-runs`
 * read the record of every run (manual and scheduled).
 */
export function registerJobRoutes(app: TypedApp, runs: JobRunsService) {
  app.post('/v1/jobs/:job/run', {
    config: { access: 'operator' },
    schema: { operationId: 'runJob',
      tags, summary: 'Run a scheduled job now: grace-periods, deletion-notifications or retention (the run is recorded)',
      params: Type.Object({ job: Type.String({ maxLength: 100 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ job: Type.String(), result: Type.Record(Type.String(), Type.Unknown()) }), ...errors(404) },
    },
  }, async (request) => {
    const name = request.params.job;
    return { job: name, result: await runs.port.run(name, { trigger: 'manual', actorKeyId: principalOf(request).keyId }) };
  });

  app.get('/v1/jobs', {
    config: { access: 'operator' },
    schema: { operationId: 'listJobs', tags,
      summary: 'The known jobs (runnable ones and scheduled-only ones such as database-backup), each with its newest run',
      querystring: NoQuery,
      response: { 200: ListOf(Type.Object({
        name: Type.String(),
        runnable: Type.Boolean({ description: 'POST /v1/jobs/{job}/run accepts it' }),
        lastRun: Type.Union([JobRunSchema, Type.Null()]),
      }, { additionalProperties: false })), ...errors() },
    },
  }, async () => ({ data: await runs.jobs(), nextCursor: null }));

  app.get('/v1/job-runs', {
    config: { access: 'operator' },
    schema: { operationId: 'listJobRuns', tags, summary: 'Runs of jobs, newest first (manual and scheduled), optionally of one job',
      querystring: Type.Object({ ...PageQuerySchema, job: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })) }, { additionalProperties: false }),
      response: { 200: ListOf(JobRunSchema), ...errors() },
    },
  }, async (request) => runs.list(request.query));
}
