import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { CaseReason, CaseStatus, ConfirmationOutcome } from './notifications.tables.ts';

export const EVENT_TYPE = 'data_deletion.required';

export interface CaseRow {
  id: string;
  customerId: string;
  applicationId: string;
  status: CaseStatus;
  reason: CaseReason | null;
  graceStartedAt: Date | null;
  graceEndsAt: Date | null;
  requiredSince: Date | null;
  revokedAt: Date | null;
  confirmedAt: Date | null;
  confirmedByKeyId: string | null;
  lastNotifiedDay: string | null;
  lastNotifiedAt: Date | null;
  outcome: ConfirmationOutcome | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface NotificationSettings {
  gracePeriodDays: number;
  notificationTime: string;
  notificationTimeZone: string;
  overdueAfterDays: number;
}

export async function readSettings(db: Db): Promise<NotificationSettings> {
  const s = await db.selectFrom('settings')
    .select(['gracePeriodDays', 'notificationTime', 'notificationTimeZone', 'overdueAfterDays'])
    .where('id', '=', 1).executeTakeFirstOrThrow();
  return s;
}

/**
 * Serializes every change to one (customer, application) pair until commit, also when no case
 * row exists yet (two concurrent cancellations of the pair's last two licenses).
 */
export async function lockPair(trx: Db, customerId: string, applicationId: string): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtextextended(${`case:${customerId}:${applicationId}`}, 0))`.execute(trx);
}

export async function findCase(trx: Db, customerId: string, applicationId: string, forUpdate = false): Promise<CaseRow | undefined> {
  let q = trx.selectFrom('deletionCases').selectAll()
    .where('customerId', '=', customerId).where('applicationId', '=', applicationId);
  if (forUpdate) q = q.forUpdate();
  return q.executeTakeFirst() as Promise<CaseRow | undefined>;
}

export async function countActiveLicenses(trx: Db, customerId: string, applicationId: string): Promise<number> {
  const r = await trx.selectFrom('licenses').select((eb) => eb.fn.countAll<string>().as('n'))
    .where('customerId', '=', customerId).where('applicationId', '=', applicationId)
    .where('status', '=', 'active').where('deletedAt', 'is', null).executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Whether the pair got a license after `since` (the application may hold the data again). */
export async function licensedSince(trx: Db, customerId: string, applicationId: string, since: Date): Promise<boolean> {
  const r = await trx.selectFrom('licenses').select('id')
    .where('customerId', '=', customerId).where('applicationId', '=', applicationId)
    .where('createdAt', '>', since).limit(1).executeTakeFirst();
  return r !== undefined;
}

type CaseFields = Partial<Omit<CaseRow, 'id' | 'customerId' | 'applicationId' | 'createdAt'>>;

export async function insertCase(trx: Db, customerId: string, applicationId: string, fields: CaseFields & { status: CaseStatus }, at: Date): Promise<CaseRow> {
  return trx.insertInto('deletionCases').values({
    customerId, applicationId, reason: null, graceStartedAt: null, graceEndsAt: null, requiredSince: null, revokedAt: null,
    confirmedAt: null, confirmedByKeyId: null, lastNotifiedDay: null, lastNotifiedAt: null, outcome: null,
    ...fields, createdAt: at, updatedAt: at,
  }).returningAll().executeTakeFirstOrThrow() as Promise<CaseRow>;
}

export async function updateCase(trx: Db, id: string, fields: CaseFields, at: Date): Promise<CaseRow> {
  return trx.updateTable('deletionCases').set({ ...fields, updatedAt: at }).where('id', '=', id)
    .returningAll().executeTakeFirstOrThrow() as Promise<CaseRow>;
}

/** The latest confirmation of a case (the one a repeat confirmation returns). */
export async function latestConfirmation(trx: Db, caseId: string) {
  return trx.selectFrom('deletionConfirmations').selectAll().where('caseId', '=', caseId)
    .orderBy('confirmedAt', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst();
}

export interface ConfirmationFilter { applicationIds?: string[]; applicationId?: string; subscriptionId?: string }

/**
 * The confirmation history, oldest first, keyset-paginated on (confirmed_at, id): rows are only
 * ever appended, so a cursor never skips or repeats one.
 */
export async function listConfirmations(db: Db, filter: ConfirmationFilter, limit: number, after: { t: Date; id: string } | null) {
  let q = db.selectFrom('deletionConfirmations').selectAll();
  if (filter.applicationIds) q = q.where('applicationId', 'in', filter.applicationIds);
  if (filter.applicationId) q = q.where('applicationId', '=', filter.applicationId);
  if (filter.subscriptionId) q = q.where('customerId', '=', filter.subscriptionId);
  if (after) q = q.where(sql<boolean>`(confirmed_at, id) > (${after.t}, ${after.id}::uuid)`);
  return q.orderBy('confirmedAt').orderBy('id').limit(limit).execute();
}

/** ISO-8601 in UTC with milliseconds, exactly like Date.prototype.toISOString (and JSON.stringify). */
const iso = (column: string) => sql.raw(`to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`);

/** A JSON string literal of a safe constant (an event type, an ISO time): no escaping needed. */
const jsonString = (v: string) => {
  if (!/^[\w.:-]+$/.test(v)) throw new Error(`not a safe JSON constant: ${v}`);
  return `"${v}"`;
};

/**
 * The outbox insert of a data_deletion.required webhook for every row of the CTE `due`
 * (columns id, customer_id, application_id, reason, required_since). The body is the same JSON
 * enqueueWebhook writes: {type, timestamp, data: {subscriptionId, applicationId, reason, requiredSince}}.
 *
 * Cost per row matters here (a million rows a day), so:
 * - the payload is built as text (uuids, a checked enum value and a formatted time: nothing to
 *   escape) and parsed into jsonb once, cheaper than nested jsonb_build_object calls; jsonb
 *   normalizes it, so the stored value equals enqueueWebhook's;
 * - the webhook-id has enqueueWebhook's shape (msg_ + 32 hex digits) but is time-ordered:
 *   14 hex digits of microseconds since the epoch and 8 random hex digits, both drawn once per
 *   statement, then a 10-digit row counter. Ids of one statement are unique by the counter,
 *   statements (and instances) differ by time and 32 random bits; increasing ids append at the
 *   right edge of the primary key and of the dispatcher's (application_id, next_attempt_at, id)
 *   index instead of touching a random leaf page per row (most of the cost with random ids once
 *   the indexes outgrow shared_buffers).
 */
function outboxInsert(at: Date) {
  const head = `{"type":${jsonString(EVENT_TYPE)},"timestamp":${jsonString(at.toISOString())},"data":{"subscriptionId":"`;
  return sql`
    INSERT INTO webhook_outbox (id, application_id, case_id, event_type, payload, next_attempt_at, created_at)
    SELECT 'msg_' || k.prefix || lpad(to_hex(row_number() OVER ()), 10, '0'), d.application_id, d.id, ${EVENT_TYPE},
      (${head}::text || d.customer_id::text || '","applicationId":"' || d.application_id::text
        || '","reason":' || coalesce('"' || d.reason || '"', 'null')
        || ',"requiredSince":' || coalesce('"' || ${iso('d.required_since')} || '"', 'null') || '}}')::jsonb,
      ${at}::timestamptz, ${at}::timestamptz
    FROM due d, (SELECT lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000000)::bigint), 14, '0')
      || substr(replace(gen_random_uuid()::text, '-', ''), 1, 8) AS prefix) k
    RETURNING case_id`;
}

/** Heap pages of deletion_cases now: the pass walks them in physical order, a range at a time. */
export async function casePages(db: Db): Promise<number> {
  const r = await sql<{ pages: string }>`
    SELECT pg_relation_size('deletion_cases') / current_setting('block_size')::bigint AS pages`.execute(db);
  return Number(r.rows[0]?.pages ?? 0);
}

/**
 * One batch of the daily pass: marks the required cases not yet notified on `day` that lie in
 * heap pages [fromPage, toPage) — all pages from `fromPage` on when toPage is null, the whole
 * table when both are null — as notified, and enqueues one webhook for each, in one statement.
 *
 * Exactly once per case per day across any number of instances: rows another transaction holds
 * are skipped (SKIP LOCKED, so a pass never waits and never deadlocks), and the UPDATE's
 * condition is re-checked on the row, so a case already marked for `day` is never picked again.
 * Page ranges (TID range scans) read the table sequentially; an id-ordered keyset would jump
 * around the heap, several times slower on a large table.
 */
export async function notifyBatch(trx: Db, day: string, at: Date, fromPage: number | null, toPage: number | null) {
  const range = fromPage === null
    ? sql``
    : toPage === null
      ? sql`ctid >= ${`(${fromPage},0)`}::tid AND`
      : sql`ctid >= ${`(${fromPage},0)`}::tid AND ctid < ${`(${toPage},0)`}::tid AND`;
  const r = await sql<{ n: string }>`
    WITH picked AS (
      SELECT ctid AS t FROM deletion_cases
      WHERE ${range} status = 'required' AND last_notified_day IS DISTINCT FROM ${day}
      FOR UPDATE SKIP LOCKED
    ), due AS (
      UPDATE deletion_cases c SET last_notified_day = ${day}, last_notified_at = ${at}::timestamptz
      WHERE c.ctid = ANY(ARRAY(SELECT t FROM picked)) AND c.status = 'required' AND c.last_notified_day IS DISTINCT FROM ${day}
      RETURNING c.id, c.customer_id, c.application_id, c.reason, c.required_since
    ), sent AS (${outboxInsert(at)})
    SELECT count(*) AS n FROM sent`.execute(trx);
  return Number(r.rows[0]?.n ?? 0);
}

/**
 * One batch of the grace sweep: cases whose grace period ended become required (reason
 * grace_expired, requiredSince = graceEndsAt) and are notified at once, which counts as `day`'s
 * notification. Returns the changed cases, for the audit log.
 */
export async function expireGraceBatch(trx: Db, day: string, at: Date, limit: number) {
  const r = await sql<{ id: string; customerId: string; applicationId: string; requiredSince: Date }>`
    WITH picked AS (
      SELECT id FROM deletion_cases WHERE status = 'grace' AND grace_ends_at <= ${at}::timestamptz
      ORDER BY grace_ends_at, id LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    ), due AS (
      UPDATE deletion_cases c SET status = 'required', reason = 'grace_expired', required_since = c.grace_ends_at,
        last_notified_day = ${day}, last_notified_at = ${at}::timestamptz, updated_at = ${at}::timestamptz
      FROM picked WHERE c.id = picked.id AND c.status = 'grace'
      RETURNING c.id, c.customer_id, c.application_id, c.reason, c.required_since
    ), sent AS (${outboxInsert(at)})
    SELECT d.id, d.customer_id, d.application_id, d.required_since FROM due d`.execute(trx);
  return r.rows;
}
