import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { fromJson } from '../db/json-values.ts';
import { ident, SqlText } from '../db/sql-text.ts';
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
 * set and the blind index cleared (e-mail and external id). Text with `q`'s parameters (part of
 * every DELETE: src/db/sql-text.ts).
 */
function redactionUpdate(q: SqlText, table: string, w: RedactionWrite, returning: boolean): string {
  const isCustomers = table === 'customers';
  const payload = JSON.stringify(w.rows.map((r) => Object.fromEntries([['id', r.id], ...r.cells.map((c, i) => [`c${i}`, c])])));
  const sets = w.columns.map((c, i) => `${ident(c.sqlColumn)} = v.c${i}${c.json ? '::jsonb' : ''}`);
  if (w.fileColumn) {
    sets.push(`${ident(w.fileColumn)} = NULL`);
    if (isCustomers) sets.push('profile_photo_content_type = NULL');
  }
  if (isCustomers) sets.push(`redacted_at = ${q.param(w.at)}`, 'email_bidx = NULL', 'external_id_bidx = NULL');
  sets.push(`updated_at = ${q.param(w.at)}`);
  const cols = ['id uuid', ...w.columns.map((_c, i) => `c${i} text`)].join(', ');
  return `UPDATE ${ident(table)} AS t SET ${sets.join(', ')}
    FROM jsonb_to_recordset(${q.param(payload, 'jsonb')}) AS v(${cols}) WHERE t.id = v.id${returning ? ' RETURNING 1' : ''}`;
}

/** One UPDATE for a batch of one table (redactionUpdate). Returns the rows changed (one returned per row). */
export async function writeRedactedValues(trx: Db, table: string, w: RedactionWrite): Promise<number> {
  const q = new SqlText();
  return (await q.run(trx, redactionUpdate(q, table, w, true))).length;
}

/** A string literal (the names come from declarations; quotes doubled all the same). */
const literal = (s: string) => `'${s.replaceAll("'", "''")}'`;

/**
 * Every personal row of the given customers, for every table, and their kept `customer.deleted`
 * activity entries, in one statement (each table's rows as one jsonb array, ordered by id; the
 * personal columns are text or jsonb, so they read the same as through the driver).
 */
export async function personalRowsOfAll(trx: Db, tables: Array<{ table: string; columns: string[] }>, ids: string[]): Promise<PersonalRows> {
  const q = new SqlText();
  const [row] = await q.run<{ r: unknown }>(trx, `SELECT ${personalRowsJson(q, tables, ids)} AS r`);
  return parsePersonalRows(row!.r, tables);
}

export interface PersonalRows {
  rows: Map<string, Array<Record<string, unknown>>>; kept: Array<{ id: string; customerId: string; details: unknown }>;
}

/** personalRowsOfAll's read as one jsonb expression of a statement built with `q` (a DELETE reads it with its blockers). */
export function personalRowsJson(q: SqlText, tables: Array<{ table: string; columns: string[] }>, ids: string[]): string {
  const parts = tables.map((t, i) => {
    const isCustomers = t.table === 'customers';
    const fields = [`'id', id`, `'customerId', ${isCustomers ? 'id' : 'customer_id'}`,
      ...t.columns.map((c) => `${literal(toCamel(c))}::text, ${ident(c)}`)];
    const where = `${isCustomers ? 'id' : 'customer_id'} IN (${q.list(ids)})`;
    return `'t${i}', (SELECT coalesce(jsonb_agg(jsonb_build_object(${fields.join(', ')}) ORDER BY id), '[]'::jsonb)
      FROM ${ident(t.table)} WHERE ${where})`;
  });
  const kept = `'kept', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'customerId', customer_id, 'details', details)), '[]'::jsonb)
    FROM activity WHERE customer_id IN (${q.list(ids)}) AND type = 'customer.deleted')`;
  return `jsonb_build_object(${[...parts, kept].join(', ')})`;
}

/** The value of personalRowsJson, by table. */
export function parsePersonalRows(value: unknown, tables: Array<{ table: string }>): PersonalRows {
  const all = fromJson<Record<string, Array<Record<string, unknown>>>>(value);
  return {
    rows: new Map(tables.map((t, i) => [t.table, all[`t${i}`]!])),
    kept: all.kept as Array<{ id: string; customerId: string; details: unknown }>,
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
  // Text (src/db/sql-text.ts): the same for every DELETE of the same shape, its values parameters.
  const q = new SqlText();
  const ctes = tables.map((t, i) => `w${i} AS (${redactionUpdate(q, t.table, t.write, true)})`);
  ctes.push(`ap AS (DELETE FROM activity WHERE customer_id IN (${q.list(ids)}) AND type <> 'customer.deleted' RETURNING 1)`);
  ctes.push(`am AS (UPDATE activity AS a SET details = v.details FROM jsonb_to_recordset(${q.param(JSON.stringify(details), 'jsonb')}) AS v(id uuid, details jsonb)
    WHERE a.id = v.id RETURNING 1)`);
  if (inserted.length > 0) {
    // A DELETE's own customer.deleted entry, written masked (the DELETE above cannot see it: same statement).
    const rows = JSON.stringify(inserted.map((e) => ({ id: e.id, customer_id: e.customerId, details: e.details, created_at: e.at })));
    ctes.push(`ai AS (INSERT INTO activity (id, customer_id, type, record_id, details, created_at)
      SELECT v.id, v.customer_id, 'customer.deleted', NULL, v.details, v.created_at
      FROM jsonb_to_recordset(${q.param(rows, 'jsonb')})
        AS v(id uuid, customer_id uuid, details jsonb, created_at timestamptz) RETURNING 1)`);
  }
  ctes.push(`sr AS (UPDATE idempotency_keys SET response_body = NULL
    WHERE customer_id IN (${q.list(ids)}) AND response_body IS NOT NULL AND response_body <> 'null'::jsonb RETURNING 1)`);
  // Last of the redaction, in the same statement: the data keys go (crypto-shredding).
  ctes.push(deleteKeysCte(q, 'dk', ids));
  const counts = [...tables.map((_t, i) => `w${i}`), 'ap', 'am', ...inserted.length > 0 ? ['ai'] : [], 'sr'].map((n) => `(SELECT count(*) FROM ${n}) AS n${n}`);
  const keys = `(SELECT coalesce(json_agg(json_build_array(customer_id, epoch_id)), '[]'::json) FROM dk) AS dk`;
  const [row] = await q.run<Record<string, unknown>>(trx, `WITH ${ctes.join(',\n')} SELECT ${[...counts, keys].join(', ')}`);
  const n = (name: string) => Number(row![`n${name}`]);
  const deleted = fromJson<Array<[string, string]>>(row!.dk);
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
