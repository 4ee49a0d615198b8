import { type RawBuilder, sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { fromJson } from '../db/json-values.ts';
import { deleteKeysCte } from '../crypto/customer-keys.repo.ts';
import { toCamel } from './data-map.ts';

/**
 * SQL of redaction (`erasure/redaction.ts` holds the logic: values are decrypted and masked in the
 * process, since personal columns are encrypted under the customer's key — crypto-shredding).
 */

const list = (ids: string[]) => sql.join(ids.map((id) => sql`${id}`));

/**
 * The given customers' rows of `table` (the customers row itself, or their records): id, customer
 * id, the personal columns. With `recordId`, only that record (of one of these customers).
 */
export async function personalRows(trx: Db, table: string, ids: string[], columns: string[], fileColumn?: string, recordId?: string): Promise<Array<Record<string, unknown>>> {
  const isCustomers = table === 'customers';
  let where = isCustomers ? sql`id IN (${list(ids)})` : sql`customer_id IN (${list(ids)})`;
  if (recordId !== undefined) where = sql`${where} AND id = ${recordId}`;
  const cols = [...(fileColumn ? [fileColumn] : []), ...columns];
  const rows = await sql<Record<string, unknown>>`SELECT id, ${isCustomers ? sql`id AS customer_id` : sql`customer_id`}
    ${cols.length ? sql`, ${sql.join(cols.map((c) => sql.ref(c)))}` : sql``}
    FROM ${sql.table(table)} WHERE ${where} ORDER BY id`.execute(trx);
  return rows.rows;
}

/** A batch of new values for one table: each row's clear values (text; `json` columns cast to jsonb). */
export interface RedactionWrite {
  columns: Array<{ sqlColumn: string; json: boolean }>;
  rows: Array<{ id: string; cells: Array<string | null> }>;
  fileColumn?: string | undefined;
  at: Date;
}

/**
 * The UPDATE that writes a batch: each row's new values (passed as one jsonb parameter, read with
 * jsonb_to_recordset), the file column emptied when its file goes, and on `customers` redacted_at
 * set and the blind index cleared (e-mail and external id).
 */
function redactionUpdate(table: string, w: RedactionWrite, returning: boolean) {
  const isCustomers = table === 'customers';
  const payload = JSON.stringify(w.rows.map((r) => Object.fromEntries([['id', r.id], ...r.cells.map((c, i) => [`c${i}`, c])])));
  const sets: RawBuilder<unknown>[] = w.columns.map((c, i) =>
    sql`${sql.ref(c.sqlColumn)} = ${sql.raw(`v.c${i}`)}${sql.raw(c.json ? '::jsonb' : '')}`);
  if (w.fileColumn) {
    sets.push(sql`${sql.ref(w.fileColumn)} = NULL`);
    if (isCustomers) sets.push(sql`profile_photo_content_type = NULL`);
  }
  if (isCustomers) sets.push(sql`redacted_at = ${w.at}`, sql`email_bidx = NULL`, sql`external_id_bidx = NULL`);
  sets.push(sql`updated_at = ${w.at}`);
  const cols = sql.raw(['id uuid', ...w.columns.map((_c, i) => `c${i} text`)].join(', '));
  return sql`UPDATE ${sql.table(table)} AS t SET ${sql.join(sets)}
    FROM jsonb_to_recordset(${payload}::jsonb) AS v(${cols}) WHERE t.id = v.id${returning ? sql` RETURNING 1` : sql``}`;
}

/** One UPDATE for a batch of one table (redactionUpdate). Returns the rows changed. */
export async function writeRedactedValues(trx: Db, table: string, w: RedactionWrite): Promise<number> {
  const r = await redactionUpdate(table, w, false).execute(trx);
  return Number(r.numAffectedRows ?? 0);
}

/**
 * Every personal row of the given customers, for every table, and their kept `customer.deleted`
 * activity entries, in one statement (each table's rows as one jsonb array, ordered by id; the
 * personal columns are text or jsonb, so they read the same as through the driver).
 */
export async function personalRowsOfAll(trx: Db, tables: Array<{ table: string; columns: string[] }>, ids: string[]): Promise<{
  rows: Map<string, Array<Record<string, unknown>>>; kept: Array<{ id: string; customerId: string; details: unknown }>;
}> {
  const parts = tables.map((t, i) => {
    const isCustomers = t.table === 'customers';
    const fields = [sql`'id', id`, sql`'customerId', ${isCustomers ? sql`id` : sql`customer_id`}`,
      ...t.columns.map((c) => sql`${sql.lit(toCamel(c))}::text, ${sql.ref(c)}`)];
    const where = isCustomers ? sql`id IN (${list(ids)})` : sql`customer_id IN (${list(ids)})`;
    return sql`(SELECT coalesce(jsonb_agg(jsonb_build_object(${sql.join(fields)}) ORDER BY id), '[]'::jsonb)
      FROM ${sql.table(t.table)} WHERE ${where}) AS ${sql.raw(`t${i}`)}`;
  });
  const kept = sql`(SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'customerId', customer_id, 'details', details)), '[]'::jsonb)
    FROM activity WHERE customer_id IN (${list(ids)}) AND type = 'customer.deleted') AS kept`;
  const r = await sql<Record<string, unknown>>`SELECT ${sql.join([...parts, kept])}`.execute(trx);
  const row = r.rows[0]!;
  const parse = (v: unknown) => fromJson<Array<Record<string, unknown>>>(v);
  return {
    rows: new Map(tables.map((t, i) => [t.table, parse(row[`t${i}`])])),
    kept: parse(row.kept) as Array<{ id: string; customerId: string; details: unknown }>,
  };
}

/**
 * A customer batch's redaction written in one statement: every table's new values, the activity
 * log purged except the `customer.deleted` entries, whose details are replaced, and the stored
 * responses purged (see purgeActivity, purgeStoredResponses). Returns the rows changed.
 */
export async function writeCustomersRedaction(trx: Db, ids: string[], tables: Array<{ table: string; write: RedactionWrite }>,
  details: Array<{ id: string; details: unknown }>,
  inserted: Array<{ id: string; customerId: string; details: unknown; at: Date }> = []): Promise<{
    tables: Record<string, number>; activityPurged: number; activityMasked: number; storedResponses: number;
    /** Customer → the epoch that wrapped its data key, deleted by this statement (crypto-shredding). */
    keyEpochs: Map<string, string>;
  }> {
  const ctes = tables.map((t, i) => sql`${sql.raw(`w${i}`)} AS (${redactionUpdate(t.table, t.write, true)})`);
  ctes.push(sql`ap AS (DELETE FROM activity WHERE customer_id IN (${list(ids)}) AND type <> 'customer.deleted' RETURNING 1)`);
  ctes.push(sql`am AS (UPDATE activity AS a SET details = v.details FROM jsonb_to_recordset(${JSON.stringify(details)}::jsonb) AS v(id uuid, details jsonb)
    WHERE a.id = v.id RETURNING 1)`);
  if (inserted.length > 0) {
    // A DELETE's own customer.deleted entry, written masked (the DELETE above cannot see it: same statement).
    ctes.push(sql`ai AS (INSERT INTO activity (id, customer_id, type, record_id, details, created_at)
      SELECT v.id, v.customer_id, 'customer.deleted', NULL, v.details, v.created_at
      FROM jsonb_to_recordset(${JSON.stringify(inserted.map((e) => ({ id: e.id, customer_id: e.customerId, details: e.details, created_at: e.at })))}::jsonb)
        AS v(id uuid, customer_id uuid, details jsonb, created_at timestamptz) RETURNING 1)`);
  }
  ctes.push(sql`sr AS (UPDATE idempotency_keys SET response_body = NULL
    WHERE customer_id IN (${list(ids)}) AND response_body IS NOT NULL AND response_body <> 'null'::jsonb RETURNING 1)`);
  // Last of the redaction, in the same statement: the data keys go (crypto-shredding).
  ctes.push(deleteKeysCte('dk', ids));
  const counts = [...tables.map((_t, i) => `w${i}`), 'ap', 'am', ...inserted.length > 0 ? ['ai'] : [], 'sr'].map((n) => sql`(SELECT count(*) FROM ${sql.raw(n)}) AS ${sql.raw(`n${n}`)}`);
  const keys = sql`(SELECT coalesce(json_agg(json_build_array(customer_id, epoch_id)), '[]'::json) FROM dk) AS dk`;
  const r = await sql<Record<string, unknown>>`WITH ${sql.join(ctes)} SELECT ${sql.join([...counts, keys])}`.execute(trx);
  const row = r.rows[0]!;
  const n = (name: string) => Number(row[`n${name}`]);
  const deleted = fromJson<Array<[string, string]>>(row.dk);
  return {
    tables: Object.fromEntries(tables.map((t, i) => [t.table, n(`w${i}`)])),
    activityPurged: n('ap'), activityMasked: n('am') + (inserted.length > 0 ? n('ai') : 0), storedResponses: n('sr'), keyEpochs: new Map(deleted),
  };
}

/** The customer's stored responses (bodies as stored: sealed under the customer's key). */
export const storedResponsesOf = (trx: Db, customerId: string) => trx.selectFrom('idempotencyKeys')
  .select(['apiKeyId', 'key', 'responseBody']).where('customerId', '=', customerId)
  .where('responseBody', 'is not', null).execute();

/** Drops the body of one stored response (its status stays: a replay still does not repeat the request). */
export async function clearStoredResponse(trx: Db, apiKeyId: string, key: string): Promise<void> {
  await trx.updateTable('idempotencyKeys').set({ responseBody: null }).where('apiKeyId', '=', apiKeyId).where('key', '=', key).execute();
}

/**
 * Idempotency rows keep their status (a replay still does not repeat the request) but lose the
 * stored response body: rows recorded for the customer, and any other response naming it
 * (e.g. a cancelled subscription, whose body carries the gift recipient).
 */
export async function purgeStoredResponses(trx: Db, ids: string[]): Promise<number> {
  if (ids.length === 0) return 0;
  // Every stored response that repeats a customer's data carries that customer's id
  // (src/http/idempotency.ts), so an index lookup finds them all instead of a scan of the table.
  const r = await sql`UPDATE idempotency_keys SET response_body = NULL
    WHERE customer_id IN (${list(ids)}) AND response_body IS NOT NULL AND response_body <> 'null'::jsonb`
    .execute(trx);
  return Number(r.numAffectedRows ?? 0);
}

/** The next `limit` soft-deleted, unredacted customers (oldest deletion first), locked, skipping locked ones. */
export async function lockRedactionBacklog(trx: Db, limit: number): Promise<string[]> {
  const rows = await sql<{ id: string }>`SELECT id FROM customers
            WHERE deleted_at IS NOT NULL AND redacted_at IS NULL
            ORDER BY deleted_at, id LIMIT ${limit} FOR UPDATE SKIP LOCKED`.execute(trx);
  return rows.rows.map((r) => r.id);
}

/** Redacted customers (after `after`, by id) that still have a stored response. */
export async function redactedWithStoredResponses(db: Db, after: string, limit: number): Promise<string[]> {
  const rows = await sql<{ customer_id: string }>`SELECT DISTINCT k.customer_id FROM idempotency_keys k
          JOIN customers c ON c.id = k.customer_id
          WHERE c.redacted_at IS NOT NULL AND k.response_body IS NOT NULL AND k.response_body <> 'null'::jsonb
            AND k.customer_id > ${after}
          ORDER BY k.customer_id LIMIT ${limit}`.execute(db);
  return rows.rows.map((r) => r.customer_id ?? (r as unknown as { customerId: string }).customerId);
}
