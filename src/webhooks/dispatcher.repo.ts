import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { WebhookPayload } from './webhooks.tables.ts';
import type { Outcome } from './sender.ts';

// Serializes claim statements across instances, so each endpoint's in-flight count (its leased
// rows) is exact when the next claim reads it. Held for one short statement.
const CLAIM_LOCK = 0x4c455457; // "LETW"

export interface ClaimedRow {
  id: string;
  applicationId: string;
  payload: WebhookPayload;
  attempts: number;
}

/**
 * Leases due rows of enabled endpoints that have a webhook URL: at most `perEndpoint` leased
 * rows per endpoint at any time (counting other instances' live leases), at most `max` in all,
 * oldest due first. A lease that expired (its instance died) is claimable again.
 */
export async function claimDue(db: Db, o: { owner: string; now: Date; leaseUntil: Date; perEndpoint: number; max: number }): Promise<ClaimedRow[]> {
  if (o.max <= 0) return [];
  return db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(${CLAIM_LOCK})`.execute(trx);
    const r = await sql<ClaimedRow>`
      WITH cand AS (
        SELECT c.id, c.next_attempt_at, busy.n,
               row_number() OVER (PARTITION BY a.id ORDER BY c.next_attempt_at, c.id) AS rn
        FROM applications a
        CROSS JOIN LATERAL (
          SELECT count(*)::int AS n FROM webhook_outbox b
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
        WHERE a.enabled AND a.webhook_url IS NOT NULL AND busy.n < ${o.perEndpoint}
      ), picked AS (
        SELECT id FROM cand WHERE rn <= ${o.perEndpoint} - n ORDER BY next_attempt_at, id LIMIT ${o.max}
      )
      UPDATE webhook_outbox SET lease_owner = ${o.owner}, lease_until = ${o.leaseUntil}
      FROM picked WHERE webhook_outbox.id = picked.id
      RETURNING webhook_outbox.id, webhook_outbox.application_id, webhook_outbox.payload, webhook_outbox.attempts`.execute(trx);
    return r.rows.map((row) => ({
      ...row,
      attempts: Number(row.attempts),
      payload: typeof row.payload === 'string' ? JSON.parse(row.payload) as WebhookPayload : row.payload,
    }));
  });
}

export const endpointsById = async (db: Db, ids: string[]) => {
  if (ids.length === 0) return new Map();
  const rows = await db.selectFrom('applications')
    .select(['id', 'webhookUrl', 'webhookSecret', 'previousWebhookSecret', 'previousSecretExpiresAt', 'enabled'])
    .where('id', 'in', ids).execute();
  return new Map(rows.map((r) => [r.id, r]));
};

export type Endpoint = Awaited<ReturnType<typeof endpointsById>> extends Map<string, infer E> ? E : never;

export async function releaseLease(db: Db, id: string, owner: string) {
  await db.updateTable('webhookOutbox').set({ leaseOwner: null, leaseUntil: null })
    .where('id', '=', id).where('leaseOwner', '=', owner).execute();
}

export async function recordAttempt(trx: Db, a: {
  outboxId: string; applicationId: string; attempt: number; at: Date; durationMs: number;
  statusCode: number | null; outcome: Outcome; error: string | null;
}) {
  await trx.insertInto('webhookDeliveries').values({
    outboxId: a.outboxId, applicationId: a.applicationId, attempt: a.attempt, attemptedAt: a.at,
    durationMs: a.durationMs, statusCode: a.statusCode, outcome: a.outcome, error: a.error,
  }).execute();
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

export async function markEndpointHealthy(trx: Db, applicationId: string) {
  await trx.updateTable('applications').set({ failingSince: null })
    .where('id', '=', applicationId).where('failingSince', 'is not', null).execute();
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
