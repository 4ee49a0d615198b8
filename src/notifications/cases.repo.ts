import { sql, type ExpressionBuilder } from 'kysely';
import { DAY_MS } from '../clock.ts';
import type { Db } from '../db/database.ts';
import type { Database } from '../db/schema.ts';
import { type Page, type PageQuery, paginate } from '../http/pagination.ts';
import { readSettingsSection } from '../settings/settings.repo.ts';
import { SqlText } from '../db/sql-text.ts';
import { enqueueWebhooksFrom, insertOutboxRows, type OutboxRow } from '../webhooks/outbox.repo.ts';
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

/** The notifications section of the settings (settings/settings.repo.ts). */
export const readSettings = (db: Db): Promise<NotificationSettings> => readSettingsSection(db, 'notifications');

/** The start of the overdue window: a case required before this instant is overdue. */
export const overdueCutoff = (at: Date, overdueAfterDays: number) => new Date(at.getTime() - overdueAfterDays * DAY_MS);

/**
 * The overdue rule, the one place it is written: a required case whose requiredSince lies before
 * the cutoff (never NULL, so its negation is exact too).
 */
export const isOverdue = (eb: ExpressionBuilder<Database, 'deletionCases'>, cutoff: Date) =>
  eb.and([eb('status', '=', 'required'), eb('requiredSince', 'is not', null), eb('requiredSince', '<', cutoff)]);

export interface CaseFilter {
  status?: CaseStatus;
  applicationId?: string;
  subscriptionId?: string;
  overdue?: boolean;
}

/** A page of cases, each with its `overdue` flag; `scope` limits to an application key's applications. */
export async function listCases(db: Db, q: { filter: CaseFilter; scope: string[] | null; cutoff: Date }, page: PageQuery)
  : Promise<Page<CaseRow & { overdue: boolean }>> {
  const { filter, scope, cutoff } = q;
  let query = db.selectFrom('deletionCases').selectAll().select((eb) => isOverdue(eb, cutoff).as('overdue'));
  if (scope) query = query.where('applicationId', 'in', scope);
  if (filter.applicationId) query = query.where('applicationId', '=', filter.applicationId);
  if (filter.subscriptionId) query = query.where('customerId', '=', filter.subscriptionId);
  if (filter.status) query = query.where('status', '=', filter.status);
  if (filter.overdue === true) query = query.where((eb) => isOverdue(eb, cutoff));
  if (filter.overdue === false) query = query.where((eb) => eb.not(isOverdue(eb, cutoff)));
  return paginate(query, 'deletion_cases', page) as Promise<Page<CaseRow & { overdue: boolean }>>;
}

/** Cases per status, and how many are overdue (the gauges). */
export async function caseCounts(db: Db, cutoff: Date): Promise<{ byStatus: Record<string, number>; overdue: number }> {
  const rows = await db.selectFrom('deletionCases').select(['status', (eb) => eb.fn.countAll<string>().as('n')])
    .groupBy('status').execute();
  const overdue = await db.selectFrom('deletionCases').select((eb) => eb.fn.countAll<string>().as('n'))
    .where((eb) => isOverdue(eb, cutoff)).executeTakeFirstOrThrow();
  return { byStatus: Object.fromEntries(rows.map((r) => [r.status, Number(r.n)])), overdue: Number(overdue.n) };
}

/** Applications the customer ever held a license for, sorted. */
export async function licensedApplications(db: Db, customerId: string): Promise<string[]> {
  const rows = await db.selectFrom('licenses').select('applicationId').distinct()
    .where('customerId', '=', customerId).orderBy('applicationId').execute();
  return rows.map((r) => r.applicationId);
}

/** Records a confirmation (kept forever: ids and times only). */
export async function insertConfirmation(trx: Db, row: CaseRow, keyId: string, at: Date, outcome: ConfirmationOutcome) {
  return trx.insertInto('deletionConfirmations').values({
    caseId: row.id, customerId: row.customerId, applicationId: row.applicationId, keyId,
    reason: row.reason, requiredSince: row.requiredSince, confirmedAt: at, outcome,
  }).returningAll().executeTakeFirstOrThrow();
}

/**
 * Serializes every change to one (customer, application) pair until commit, also when no case
 * row exists yet (two concurrent cancellations of the pair's last two licenses).
 */
export async function lockPair(trx: Db, customerId: string, applicationId: string): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtextextended(${`case:${customerId}:${applicationId}`}, 0))`.execute(trx);
}

/** lockPair for several applications of one customer, in one statement (in application id order). */
export async function lockPairs(trx: Db, customerId: string, applicationIds: string[]): Promise<void> {
  const keys = [...applicationIds].sort().map((a) => `case:${customerId}:${a}`);
  // SQL text (db/sql-text.ts), as findCases and writeCases: they run per DELETE, Kysely's building cost more than they do.
  const q = new SqlText();
  await q.run(trx, `SELECT pg_advisory_xact_lock(hashtextextended(k.key, 0))
    FROM (SELECT key FROM unnest(${q.param(keys, 'text[]')}) WITH ORDINALITY AS u(key, n) ORDER BY n) AS k`);
}

/**
 * The customer's cases of these applications (locked with `forUpdate`), each with whether the
 * pair got a license after the case's confirmation (licensedSince), in one statement.
 */
export async function findCases(trx: Db, customerId: string, applicationIds: string[], forUpdate = false)
  : Promise<Map<string, { row: CaseRow; licensedSinceConfirmed: boolean }>> {
  if (applicationIds.length === 0) return new Map();
  const q = new SqlText();
  const rows = await q.runCamel<CaseRow & { licensedSinceConfirmed: boolean }>(trx, `SELECT c.*,
      (c.confirmed_at IS NOT NULL AND EXISTS (SELECT 1 FROM licenses l WHERE l.customer_id = c.customer_id
        AND l.application_id = c.application_id AND l.created_at > c.confirmed_at)) AS licensed_since_confirmed
    FROM deletion_cases c WHERE c.customer_id = ${q.param(customerId)} AND c.application_id IN (${q.list(applicationIds)})
    ${forUpdate ? 'FOR UPDATE OF c' : ''}`);
  return new Map(rows.map(({ licensedSinceConfirmed, ...row }) => [row.applicationId, { row: row as CaseRow, licensedSinceConfirmed }]));
}

const CASE_COLUMNS = `id uuid, customer_id uuid, application_id uuid, status text, reason text, grace_started_at timestamptz,
  grace_ends_at timestamptz, required_since timestamptz, revoked_at timestamptz, confirmed_at timestamptz,
  confirmed_by_key_id uuid, last_notified_day text, last_notified_at timestamptz, outcome text,
  created_at timestamptz, updated_at timestamptz`;
const caseJson = (r: CaseRow) => ({
  id: r.id, customer_id: r.customerId, application_id: r.applicationId, status: r.status, reason: r.reason,
  grace_started_at: r.graceStartedAt, grace_ends_at: r.graceEndsAt, required_since: r.requiredSince, revoked_at: r.revokedAt,
  confirmed_at: r.confirmedAt, confirmed_by_key_id: r.confirmedByKeyId, last_notified_day: r.lastNotifiedDay,
  last_notified_at: r.lastNotifiedAt, outcome: r.outcome, created_at: r.createdAt, updated_at: r.updatedAt,
});

/**
 * Cases written in one statement: `inserts` are new rows (their id drawn by the caller), `updates`
 * existing rows set to these values (every column but id, customer, application and created_at),
 * plus `outbox` rows (webhooks/outbox.repo.ts outboxRow). Returns the cases written.
 */
export async function writeCases(trx: Db, inserts: CaseRow[], updates: CaseRow[], outbox: OutboxRow[] = []): Promise<number> {
  if (inserts.length + updates.length + outbox.length === 0) return 0;
  const q = new SqlText();
  const ctes = [
    `ins AS (INSERT INTO deletion_cases (id, customer_id, application_id, status, reason, grace_started_at, grace_ends_at,
        required_since, revoked_at, confirmed_at, confirmed_by_key_id, last_notified_day, last_notified_at, outcome, created_at, updated_at)
      SELECT * FROM jsonb_to_recordset(${q.param(JSON.stringify(inserts.map(caseJson)), 'jsonb')}) AS v(${CASE_COLUMNS}) RETURNING 1)`,
    `upd AS (UPDATE deletion_cases AS t SET status = v.status, reason = v.reason, grace_started_at = v.grace_started_at,
        grace_ends_at = v.grace_ends_at, required_since = v.required_since, revoked_at = v.revoked_at, confirmed_at = v.confirmed_at,
        confirmed_by_key_id = v.confirmed_by_key_id, last_notified_day = v.last_notified_day, last_notified_at = v.last_notified_at,
        outcome = v.outcome, updated_at = v.updated_at
      FROM jsonb_to_recordset(${q.param(JSON.stringify(updates.map(caseJson)), 'jsonb')}) AS v(${CASE_COLUMNS}) WHERE t.id = v.id RETURNING 1)`,
    ...(outbox.length ? [`m0 AS (${insertOutboxRows(q, outbox)})`] : []),
  ];
  const [r] = await q.run<{ n: string | number }>(trx, `WITH ${ctes.join(', ')} SELECT (SELECT count(*) FROM ins) + (SELECT count(*) FROM upd) AS n`);
  return Number(r!.n);
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

/**
 * The data_deletion.required webhook of every row of the CTE `due` (columns id, customer_id,
 * application_id, reason, required_since), written by the one outbox writer (webhooks/outbox.repo.ts):
 * data is {subscriptionId, applicationId, reason, requiredSince}, built as text (uuids, a checked
 * enum value and a formatted time: nothing to escape).
 */
const outboxInsert = (at: Date) => enqueueWebhooksFrom('due', {
  type: EVENT_TYPE, at,
  dataText: sql`'{"subscriptionId":"' || d.customer_id::text || '","applicationId":"' || d.application_id::text
    || '","reason":' || coalesce('"' || d.reason || '"', 'null')
    || ',"requiredSince":' || coalesce('"' || ${iso('d.required_since')} || '"', 'null') || '}'`,
});

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
