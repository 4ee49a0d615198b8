import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { JobRunResult } from './deployment.tables.ts';

/** SQL of the deployment domain: the `deployment` row, `job_runs` claims, pruning of operational tables. */

/** The single deployment row (id = 1), created if missing, locked for the caller's transaction. */
export async function lockDeploymentRow(trx: Db, at: Date) {
  await trx.insertInto('deployment').values({ id: 1, keyFingerprint: null, backupMarkerId: null, updatedAt: at })
    .onConflict((oc) => oc.column('id').doNothing()).execute();
  return trx.selectFrom('deployment').selectAll().where('id', '=', 1).forUpdate().executeTakeFirstOrThrow();
}

export async function updateDeploymentRow(trx: Db, set: { keyFingerprint?: string; backupMarkerId?: string }, at: Date): Promise<void> {
  await trx.updateTable('deployment').set({ ...set, updatedAt: at }).where('id', '=', 1).execute();
}

export const backupMarkerId = async (db: Db): Promise<string | null> =>
  (await db.selectFrom('deployment').select('backupMarkerId').where('id', '=', 1).executeTakeFirst())?.backupMarkerId ?? null;

/** The key fingerprint of the newest sealed archive (a database from before the master-key guard). */
export const latestArchiveFingerprint = async (trx: Db): Promise<string | null> =>
  (await trx.selectFrom('backupArchives').select('keyFingerprint').orderBy('createdAt', 'desc').limit(1).executeTakeFirst())?.keyFingerprint ?? null;

/** Claims (job, slot) for an instance; a claim unfinished since before `staleBefore` may be taken over. */
export async function claimRun(db: Db, job: string, slot: string, instanceId: string, at: Date, staleBefore: Date): Promise<boolean> {
  // A takeover (the claim's instance died: still running or marked abandoned) starts the run afresh.
  const r = await sql<{ job: string }>`INSERT INTO job_runs (job, slot, instance_id, started_at, trigger, outcome)
    VALUES (${job}, ${slot}, ${instanceId}, ${at}, 'scheduled', 'running')
    ON CONFLICT (job, slot) DO UPDATE SET instance_id = EXCLUDED.instance_id, started_at = EXCLUDED.started_at,
      outcome = 'running', result = NULL, error = NULL
      WHERE job_runs.finished_at IS NULL AND job_runs.started_at < ${staleBefore}
    RETURNING job`.execute(db);
  return r.rows.length > 0;
}

/** Ends a claimed run with its outcome, counts (numbers only) and, when it failed, a short error code. */
export async function finishRun(db: Db, job: string, slot: string, at: Date, outcome: 'succeeded' | 'failed',
  details: { result?: JobRunResult | null; error?: string | null } = {}): Promise<void> {
  await db.updateTable('jobRuns').set({
    finishedAt: at, outcome, result: details.result ? JSON.stringify(details.result) : null, error: details.error ?? null,
  }).where('job', '=', job).where('slot', '=', slot).execute();
}

/** Delivery attempts older than the cutoff; returns how many went. */
export async function pruneDeliveries(db: Db, cutoff: Date): Promise<number> {
  return Number((await db.deleteFrom('webhookDeliveries').where('attemptedAt', '<', cutoff).executeTakeFirst()).numDeletedRows);
}

/** Delivered or failed webhooks older than the cutoff (pending ones never), with their attempts. */
export async function pruneOutbox(db: Db, cutoff: Date): Promise<number> {
  return db.transaction().execute(async (trx) => {
    // Deliveries of a pruned webhook go with it (their foreign key), whatever their age.
    await sql`DELETE FROM webhook_deliveries d USING webhook_outbox o
      WHERE d.outbox_id = o.id AND o.status <> 'pending' AND o.created_at < ${cutoff}`.execute(trx);
    const r = await trx.deleteFrom('webhookOutbox').where('status', '<>', 'pending').where('createdAt', '<', cutoff).executeTakeFirst();
    return Number(r.numDeletedRows);
  });
}

/** Runs started before the cutoff; a run still `running` is never pruned (it is marked abandoned first). */
export async function pruneJobRuns(db: Db, cutoff: Date): Promise<number> {
  return Number((await db.deleteFrom('jobRuns').where('startedAt', '<', cutoff).where('outcome', '<>', 'running')
    .executeTakeFirst()).numDeletedRows);
}

/** Runs still `running` that started before `before`: their process died mid-run. Returns how many. */
export async function abandonStaleRuns(db: Db, before: Date): Promise<number> {
  return Number((await db.updateTable('jobRuns').set({ outcome: 'abandoned' }).where('outcome', '=', 'running')
    .where('startedAt', '<', before).executeTakeFirst()).numUpdatedRows);
}

/** The pending outbox: how many rows, and the oldest one's creation time. */
export async function pendingOutboxStats(db: Db): Promise<{ count: number; oldest: Date | null }> {
  const r = await db.selectFrom('webhookOutbox').where('status', '=', 'pending')
    .select((eb) => [eb.fn.countAll().as('n'), eb.fn.min('createdAt').as('oldest')]).executeTakeFirstOrThrow();
  return { count: Number(r.n), oldest: r.oldest ? new Date(r.oldest as unknown as string | Date) : null };
}

/** Used by the advisory-lock helper below: one writer of the shared journal file at a time. */
export const JOURNAL_WRITER_LOCK = 0x1e7e_10a1;
export const lockJournalWriter = (trx: Db) => sql`SELECT pg_advisory_xact_lock(${JOURNAL_WRITER_LOCK})`.execute(trx);
