import type { Db } from '../db/database.ts';
import type { JobOutcome, JobRunResult, JobTrigger } from '../deployment/deployment.tables.ts';
import { paginate, type Page, type PageQuery } from '../http/pagination.ts';

/** SQL of the job-run records (`job_runs`, migrations 0007 and 0015). The backups' slot claims are in deployment.repo.ts. */

export interface JobRunRow {
  id: string;
  job: string;
  trigger: JobTrigger;
  actorKeyId: string | null;
  instanceId: string;
  startedAt: Date;
  finishedAt: Date | null;
  outcome: JobOutcome;
  result: JobRunResult | null;
  error: string | null;
}

const COLUMNS = ['id', 'job', 'trigger', 'actorKeyId', 'instanceId', 'startedAt', 'finishedAt', 'outcome', 'result', 'error'] as const;

/** A run that claims no slot: its own id is its slot, so it never conflicts with a claim. */
export async function insertRun(db: Db, run: { id: string; job: string; trigger: JobTrigger; actorKeyId: string | null; instanceId: string; at: Date }) {
  await db.insertInto('jobRuns').values({
    id: run.id, job: run.job, slot: run.id, trigger: run.trigger, actorKeyId: run.actorKeyId, instanceId: run.instanceId,
    startedAt: run.at, finishedAt: null, outcome: 'running',
  }).execute();
}

export async function endRun(db: Db, id: string, end: { at: Date; outcome: 'succeeded' | 'failed'; result: JobRunResult | null; error: string | null }) {
  await db.updateTable('jobRuns').set({
    finishedAt: end.at, outcome: end.outcome, result: end.result ? JSON.stringify(end.result) : null, error: end.error,
  }).where('id', '=', id).execute();
}

/** An idle scheduled run that is not kept (RunHow.keepIdle). */
export async function deleteRun(db: Db, id: string) {
  await db.deleteFrom('jobRuns').where('id', '=', id).execute();
}

/** Runs newest first (by start, then id), optionally of one job. */
export function listRuns(db: Db, q: PageQuery & { job?: string }): Promise<Page<JobRunRow>> {
  let query = db.selectFrom('jobRuns').select([...COLUMNS]);
  if (q.job) query = query.where('job', '=', q.job);
  return paginate(query, 'job_runs', q, { column: 'started_at', timeOf: (r) => r.startedAt, newestFirst: true }) as Promise<Page<JobRunRow>>;
}

/** The newest run of every job that has one. */
export function lastRuns(db: Db): Promise<JobRunRow[]> {
  return db.selectFrom('jobRuns').distinctOn('job').select([...COLUMNS])
    .orderBy('job').orderBy('startedAt', 'desc').orderBy('id', 'desc').execute() as Promise<JobRunRow[]>;
}
