import crypto from 'node:crypto';
import { sql, type RawBuilder } from 'kysely';
import type { Db } from '../db/database.ts';
import type { SqlText } from '../db/sql-text.ts';
import type { WebhookPayload } from './webhooks.tables.ts';

export interface NewWebhook {
  applicationId: string;
  type: string;
  data: Record<string, unknown>;
  caseId?: string | null;
  at: Date;
}

/**
 * Writes a webhook into the outbox inside the caller's transaction: it is sent if and only if
 * the cause commits. Returns the `webhook-id`.
 */
export async function enqueueWebhook(trx: Db, w: NewWebhook): Promise<string> {
  const row = outboxRow(w);
  await trx.insertInto('webhookOutbox').values({
    ...row, payload: JSON.stringify(row.payload), leaseOwner: null, leaseUntil: null,
    lastStatusCode: null, lastError: null, deliveredAt: null,
  }).execute();
  return row.id;
}

/** The outbox row enqueueWebhook writes (its webhook-id drawn here), for writers that insert many in one statement. */
export function outboxRow(w: NewWebhook) {
  const payload: WebhookPayload = { type: w.type, timestamp: w.at.toISOString(), data: w.data };
  return {
    id: `msg_${crypto.randomUUID().replaceAll('-', '')}`, applicationId: w.applicationId, caseId: w.caseId ?? null,
    eventType: w.type, payload, nextAttemptAt: w.at, createdAt: w.at,
  };
}

export type OutboxRow = ReturnType<typeof outboxRow>;

/**
 * Outbox rows (outboxRow) as the SQL text of one INSERT of them all, for a statement's CTE list
 * built with `q` (db/sql-text.ts), passed as one jsonb parameter. The stored rows equal enqueueWebhook's.
 */
export function insertOutboxRows(q: SqlText, rows: OutboxRow[]): string {
  const data = JSON.stringify(rows.map((r) => ({
    id: r.id, application_id: r.applicationId, case_id: r.caseId, event_type: r.eventType, payload: r.payload,
    next_attempt_at: r.nextAttemptAt.toISOString(), created_at: r.createdAt.toISOString(),
  })));
  return `INSERT INTO webhook_outbox (id, application_id, case_id, event_type, payload, next_attempt_at, lease_owner,
      lease_until, last_status_code, last_error, created_at, delivered_at)
    SELECT v.id, v.application_id, v.case_id, v.event_type, v.payload, v.next_attempt_at, NULL, NULL, NULL, NULL, v.created_at, NULL
    FROM jsonb_to_recordset(${q.param(data, 'jsonb')}) AS v(id text, application_id uuid, case_id uuid, event_type text, payload jsonb,
      next_attempt_at timestamptz, created_at timestamptz)
    RETURNING 1`;
}

/** A JSON string literal of a safe constant (an event type, an ISO time): no escaping needed. */
const jsonString = (v: string) => {
  if (!/^[\w.:-]+$/.test(v)) throw new Error(`not a safe JSON constant: ${v}`);
  return `"${v}"`;
};

/**
 * The bulk form of enqueueWebhook, as an SQL fragment for a statement's CTE list: one outbox row
 * per row `d` of the CTE named `source` (columns id — the case id — and application_id), with
 * `dataText` the text of the JSON `data` object built from `d`. Returns the inserted rows' case_id.
 * The payload is the same JSON enqueueWebhook writes ({type, timestamp, data}).
 *
 * Cost per row matters here (a million rows a day), so:
 * - the payload is built as text and parsed into jsonb once, cheaper than nested
 *   jsonb_build_object calls; jsonb normalizes it, so the stored value equals enqueueWebhook's;
 * - the webhook-id has enqueueWebhook's shape (msg_ + 32 hex digits) but is time-ordered:
 *   14 hex digits of microseconds since the epoch and 8 random hex digits, both drawn once per
 *   statement, then a 10-digit row counter. Ids of one statement are unique by the counter,
 *   statements (and instances) differ by time and 32 random bits; increasing ids append at the
 *   right edge of the primary key and of the dispatcher's (application_id, next_attempt_at, id)
 *   index instead of touching a random leaf page per row (most of the cost with random ids once
 *   the indexes outgrow shared_buffers).
 */
export function enqueueWebhooksFrom(source: 'due', w: { type: string; at: Date; dataText: RawBuilder<unknown> }) {
  const head = `{"type":${jsonString(w.type)},"timestamp":${jsonString(w.at.toISOString())},"data":`;
  return sql`
    INSERT INTO webhook_outbox (id, application_id, case_id, event_type, payload, next_attempt_at, created_at)
    SELECT 'msg_' || k.prefix || lpad(to_hex(row_number() OVER ()), 10, '0'), d.application_id, d.id, ${w.type},
      (${head}::text || ${w.dataText} || '}')::jsonb,
      ${w.at}::timestamptz, ${w.at}::timestamptz
    FROM ${sql.table(source)} d, (SELECT lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000000)::bigint), 14, '0')
      || substr(replace(gen_random_uuid()::text, '-', ''), 1, 8) AS prefix) k
    RETURNING case_id`;
}
