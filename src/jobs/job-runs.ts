import crypto from 'node:crypto';
import type { Ctx } from '../context.ts';
import type { JobOutcome, JobRunResult, JobTrigger } from '../deployment/deployment.tables.ts';
import { AppError } from '../http/errors.ts';
import type { PageQuery } from '../http/pagination.ts';
import type { Job } from '../plugin/registry.ts';
import * as repo from './job-runs.repo.ts';

/**
 * A run still `running` this long after it started is shown as `abandoned` (its process died
 * mid-run: no job runs that long; the backups take a claim over after one hour); the daily
 * retention job then stores `abandoned`, and only then may the row be pruned.
 */
export const ABANDONED_AFTER_MS = 6 * 3600_000;

export interface RunHow {
  trigger: JobTrigger; actorKeyId: string | null;
  /**
   * false: a successful run whose counts are all zero is not kept (the grace sweep runs every
   * minute on every instance; 1,440 idle rows a day each would bury the runs that did something).
   * Failed runs are always kept. Default true.
   */
  keepIdle?: boolean;
}

/**
 * No count above zero: the run changed nothing. Flags are not counts (the sweep reports whether
 * deleteCustomerWhenGraceEnds is `enabled`), so they never make a run count as work done.
 */
export function isIdle(counts: JobRunResult | null): boolean {
  if (!counts) return true;
  return Object.values(counts).every((v) => (typeof v === 'number' ? v === 0 : typeof v === 'boolean' ? true : isIdle(v as JobRunResult)));
}

/** What one job offers others: run a registered job, or record any work as a run of a job. */
export interface JobRunsPort {
  /** Runs a registered job and records the run (404 for an unknown job). */
  run(name: string, how: RunHow): Promise<Record<string, unknown>>;
  /** Records `work` as one run of `job`: a `running` row first, then its outcome, counts or error code. */
  record<T>(job: string, how: RunHow, work: () => Promise<T>): Promise<T>;
}

declare module '../plugin/registry.ts' {
  interface Ports {
    /** Every run of a job goes through here (the API and every scheduler), so every run is recorded. */
    jobRuns: JobRunsPort;
  }
}

/**
 * The counts of a job's result: numbers and booleans, in nested objects up to three levels; any
 * string (a day, a time zone, a message) is left out, so a run record never holds free text.
 */
export function countsOf(value: unknown, depth = 0): JobRunResult | null {
  if (!value || typeof value !== 'object' || Array.isArray(value) || depth > 3) return null;
  const out: JobRunResult = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
    else if (typeof v === 'boolean') out[k] = v;
    else if (Array.isArray(v)) out[k] = v.length;
    else {
      const nested = countsOf(v, depth + 1);
      if (nested) out[k] = nested;
    }
  }
  return out;
}

const SAFE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,60}$/;
const SAFE_CODE = /^[A-Za-z0-9_]{1,40}$/;

/**
 * A short code for a failed run: the API error code, else the error's class and code
 * ("TypeError", "DatabaseError: 23505", "Error: ECONNREFUSED"). Never the message, which may quote data.
 */
export function errorCodeOf(error: unknown): string {
  if (error instanceof AppError) return error.code;
  const e = error as { name?: unknown; code?: unknown } | null;
  const name = typeof e?.name === 'string' && SAFE_NAME.test(e.name) ? e.name : 'Error';
  const code = typeof e?.code === 'string' && SAFE_CODE.test(e.code) ? e.code : null;
  return code ? `${name}: ${code}` : name;
}

export interface JobRunView {
  id: string; job: string; trigger: JobTrigger; actorKeyId: string | null; instanceId: string;
  startedAt: Date; finishedAt: Date | null; durationMs: number | null; outcome: JobOutcome;
  result: JobRunResult | null; error: string | null;
}

export function createJobRuns(ctx: Ctx, jobsOf: () => ReadonlyMap<string, Job>) {
  const { db, clock } = ctx;

  const view = (r: repo.JobRunRow, now: Date): JobRunView => ({
    id: r.id, job: r.job, trigger: r.trigger, actorKeyId: r.actorKeyId, instanceId: r.instanceId,
    startedAt: r.startedAt, finishedAt: r.finishedAt,
    durationMs: r.finishedAt ? r.finishedAt.getTime() - r.startedAt.getTime() : null,
    outcome: r.outcome === 'running' && now.getTime() - r.startedAt.getTime() > ABANDONED_AFTER_MS ? 'abandoned' : r.outcome,
    result: r.result, error: r.error,
  });

  async function record<T>(job: string, how: RunHow, work: () => Promise<T>): Promise<T> {
    const id = crypto.randomUUID();
    await repo.insertRun(db, { id, job, trigger: how.trigger, actorKeyId: how.actorKeyId, instanceId: ctx.config.instanceId, at: clock.now() });
    let result: T;
    try {
      result = await work();
    } catch (error) {
      await repo.endRun(db, id, { at: clock.now(), outcome: 'failed', result: null, error: errorCodeOf(error) })
        .catch((e: Error) => ctx.log.error({ job, err: e.message }, 'could not record the failed job run'));
      throw error;
    }
    // The work is done: a failure to record it is logged, not turned into a failed run.
    const counts = countsOf(result);
    await (how.keepIdle === false && isIdle(counts)
      ? repo.deleteRun(db, id)
      : repo.endRun(db, id, { at: clock.now(), outcome: 'succeeded', result: counts, error: null }))
      .catch((e: Error) => ctx.log.error({ job, err: e.message }, 'could not record the job run'));
    return result;
  }

  const port: JobRunsPort = {
    record,
    async run(name, how) {
      const jobs = jobsOf();
      const job = jobs.get(name);
      if (!job) throw new AppError('not_found', `Job "${name}" not found (known: ${[...jobs.keys()].sort().join(', ') || 'none'})`);
      return record(name, how, () => job.run(how.actorKeyId));
    },
  };

  return {
    port,
    /** Runs newest first, optionally of one job. */
    async list(q: PageQuery & { job?: string }) {
      const page = await repo.listRuns(db, q);
      const now = clock.now();
      return { data: page.data.map((r) => view(r, now)), nextCursor: page.nextCursor };
    },
    /** Every registered job (runnable) and every job with recorded runs (e.g. database-backup), with its newest run. */
    async jobs() {
      const now = clock.now();
      const last = new Map((await repo.lastRuns(db)).map((r) => [r.job, view(r, now)]));
      const registered = jobsOf();
      const names = [...new Set([...registered.keys(), ...last.keys()])].sort();
      return names.map((name) => ({ name, runnable: registered.has(name), lastRun: last.get(name) ?? null }));
    },
  };
}

export type JobRunsService = ReturnType<typeof createJobRuns>;
