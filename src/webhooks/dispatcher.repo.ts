import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { fromJson } from '../db/json-values.ts';
import type { WebhookPayload } from './webhooks.tables.ts';
import type { Outcome } from './sender.ts';

// Serializes claim statements across instances, so two instances never both take up one endpoint
// (each sees the other's committed leases). Held for one short statement.
const CLAIM_LOCK = 0x4c455457; // "LETW"

export interface ClaimedRow {
  id: string;
  applicationId: string;
  payload: WebhookPayload;
  attempts: number;
  /** The endpoint, read in the same statement. */
  webhookUrl: string | null;
  webhookSecret: string;
  previousWebhookSecret: string | null;
  previousSecretExpiresAt: Date | null;
}

/**
 * Leases due rows of enabled endpoints that have a webhook URL, oldest due first, at most `max`
 * in all. An endpoint is served by one instance at a time: rows of an endpoint on which another
 * instance holds a live lease are not claimed, so the caller's in-memory cap on concurrent
 * requests per endpoint holds across instances. This instance keeps at most `perEndpoint` rows
 * of an endpoint leased (in flight, queued or awaiting settlement). A lease that expired (its
 * instance died) is claimable again.
 */
/**
 * Takes the claim lock. The dispatcher's transactions also skip waiting for the WAL flush
 * (synchronous_commit off): losing one in a database crash only means a lease or a settlement
 * is forgotten, so a webhook is sent again with the same webhook-id — never lost.
 */
export async function lockClaims(trx: Db) {
  await sql`SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock(${CLAIM_LOCK})`.execute(trx);
}

/** Must run inside a transaction that called lockClaims first. */
export async function claimDue(trx: Db, o: { owner: string; now: Date; leaseUntil: Date; perEndpoint: number; max: number }): Promise<ClaimedRow[]> {
  if (o.max <= 0) return [];
  const r = await sql<ClaimedRow>`
    WITH cand AS (
      SELECT c.id, c.next_attempt_at, busy.mine,
             row_number() OVER (PARTITION BY a.id ORDER BY c.next_attempt_at, c.id) AS rn
      FROM applications a
      CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE b.lease_owner = ${o.owner})::int AS mine,
               count(*) FILTER (WHERE b.lease_owner <> ${o.owner})::int AS others
        FROM webhook_outbox b
        WHERE b.application_id = a.id AND b.lease_until IS NOT NULL AND b.lease_until > ${o.now} AND b.status = 'pending'
      ) busy
      CROSS JOIN LATERAL (
        SELECT w.id, w.next_attempt_at FROM webhook_outbox w
        WHERE w.application_id = a.id AND w.status = 'pending' AND w.next_attempt_at <= ${o.now}
          AND (w.lease_until IS NULL OR w.lease_until <= ${o.now})
        ORDER BY w.next_attempt_at, w.id
        LIMIT ${o.perEndpoint}
        FOR UPDATE OF w SKIP LOCKED
      ) c
      WHERE a.enabled AND a.webhook_url IS NOT NULL AND busy.others = 0 AND busy.mine < ${o.perEndpoint}
    ), picked AS (
      SELECT id FROM cand WHERE rn <= ${o.perEndpoint} - mine ORDER BY next_attempt_at, id LIMIT ${o.max}
    )
    UPDATE webhook_outbox SET lease_owner = ${o.owner}, lease_until = ${o.leaseUntil}
    FROM picked JOIN applications ap ON true
    WHERE webhook_outbox.id = picked.id AND ap.id = webhook_outbox.application_id
    RETURNING webhook_outbox.id, webhook_outbox.application_id, webhook_outbox.payload, webhook_outbox.attempts,
      ap.webhook_url, ap.webhook_secret, ap.previous_webhook_secret, ap.previous_secret_expires_at`.execute(trx);
  return r.rows.map((row) => ({
    ...row,
    attempts: Number(row.attempts),
    previousSecretExpiresAt: row.previousSecretExpiresAt ? new Date(row.previousSecretExpiresAt) : null,
    payload: fromJson<WebhookPayload>(row.payload),
  }));
}

export interface AttemptRecord {
  outboxId: string; applicationId: string; attempt: number; at: Date; durationMs: number;
  statusCode: number | null; outcome: Outcome; error: string | null; excerpt?: string | null;
}

export async function recordAttempts(trx: Db, list: AttemptRecord[]) {
  if (list.length === 0) return;
  await trx.insertInto('webhookDeliveries').values(list.map((a) => ({
    outboxId: a.outboxId, applicationId: a.applicationId, attempt: a.attempt, attemptedAt: a.at,
    durationMs: a.durationMs, statusCode: a.statusCode, outcome: a.outcome, error: a.error,
    responseExcerpt: a.excerpt ?? null,
  }))).execute();
  // An excerpt about a customer who is deleted already is not kept (cleared with the customer's deletion).
  const withExcerpt = list.filter((a) => a.excerpt).map((a) => a.outboxId);
  if (withExcerpt.length > 0) {
    await sql`UPDATE webhook_deliveries d SET response_excerpt = NULL
      FROM webhook_outbox o JOIN deletion_cases c ON c.id = o.case_id JOIN customers cu ON cu.id = c.customer_id
      WHERE d.outbox_id = o.id AND cu.deleted_at IS NOT NULL AND d.response_excerpt IS NOT NULL
        AND d.outbox_id IN (${sql.join(withExcerpt)})`.execute(trx);
  }
}

/**
 * Settles delivered rows in one statement (the hot path): records the attempts, marks the rows
 * delivered (unless their lease was lost to another instance) and ends the endpoints' failing streaks.
 */
export async function settleDelivered(trx: Db, owner: string, list: AttemptRecord[], at: Date) {
  if (list.length === 0) return;
  const values = sql.join(list.map((d) => sql`(${d.outboxId}::text, ${d.applicationId}::uuid, ${d.attempt}::int, ${d.at}::timestamptz, ${d.durationMs}::int, ${d.statusCode}::int)`));
  await sql`
    WITH v(id, application_id, attempt, attempted_at, duration_ms, status_code) AS (VALUES ${values}),
    ins AS (
      INSERT INTO webhook_deliveries (outbox_id, application_id, attempt, attempted_at, duration_ms, status_code, outcome)
      SELECT id, application_id, attempt, attempted_at, duration_ms, status_code, 'delivered' FROM v
    ),
    upd AS (
      UPDATE webhook_outbox o SET status = 'delivered', attempts = v.attempt, lease_owner = NULL, lease_until = NULL,
        last_status_code = v.status_code, last_error = NULL, delivered_at = ${at}
      FROM v WHERE o.id = v.id AND o.lease_owner = ${owner}
    )
    UPDATE applications SET failing_since = NULL
    WHERE id IN (SELECT application_id FROM v) AND failing_since IS NOT NULL`.execute(trx);
}

/** Gives back one lease (only that lease: a later claim of the same row by this owner is kept). */
export async function releaseLease(db: Db, id: string, owner: string, leaseUntil?: Date) {
  let q = db.updateTable('webhookOutbox').set({ leaseOwner: null, leaseUntil: null })
    .where('id', '=', id).where('leaseOwner', '=', owner);
  if (leaseUntil) q = q.where('leaseUntil', '=', leaseUntil);
  await q.execute();
}

/** Ends this instance's lease on a row with its new state. False when the lease was lost. */
export async function settleRow(trx: Db, id: string, owner: string, v: {
  status: 'pending' | 'delivered' | 'failed'; attempts: number; nextAttemptAt?: Date; statusCode: number | null;
  error: string | null; deliveredAt?: Date;
}): Promise<boolean> {
  const r = await trx.updateTable('webhookOutbox').set({
    status: v.status, attempts: v.attempts, leaseOwner: null, leaseUntil: null,
    lastStatusCode: v.statusCode, lastError: v.error,
    ...(v.nextAttemptAt ? { nextAttemptAt: v.nextAttemptAt } : {}),
    ...(v.deliveredAt ? { deliveredAt: v.deliveredAt } : {}),
  }).where('id', '=', id).where('leaseOwner', '=', owner).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** Starts (or continues) the endpoint's failing streak; returns when it began. */
export async function markEndpointFailing(trx: Db, applicationId: string, at: Date): Promise<Date | null> {
  const r = await trx.updateTable('applications')
    .set({ failingSince: sql<Date>`COALESCE(failing_since, ${at})` })
    .where('id', '=', applicationId).returning('failingSince').executeTakeFirst();
  return r?.failingSince ?? null;
}

/** Disables an enabled endpoint; false when it already was disabled (so it is audited once). */
export async function disableEndpoint(trx: Db, applicationId: string, reason: string, at: Date): Promise<boolean> {
  const r = await trx.updateTable('applications').set({ enabled: false, disabledReason: reason, updatedAt: at })
    .where('id', '=', applicationId).where('enabled', '=', true).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** Gives leased rows back at once (a stopping instance), rather than when their leases expire. */
export async function releaseLeases(db: Db, ids: string[], owner: string): Promise<void> {
  await db.updateTable('webhookOutbox').set({ leaseOwner: null, leaseUntil: null })
    .where('id', 'in', ids).where('leaseOwner', '=', owner).execute();
}
