import { type RawBuilder, sql } from 'kysely';
import type { Db } from '../db/database.ts';

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

/**
 * One UPDATE for a batch: each row's new clear values (text; `json` columns cast to jsonb), the
 * file column emptied when its file goes, and on `customers` redacted_at set and the blind index
 * cleared (e-mail and external id). Returns the rows changed.
 */
export async function writeRedactedValues(trx: Db, table: string, w: {
  columns: Array<{ sqlColumn: string; json: boolean }>;
  rows: Array<{ id: string; cells: Array<string | null> }>;
  fileColumn?: string | undefined;
  at: Date;
}): Promise<number> {
  const isCustomers = table === 'customers';
  const values = w.rows.map((r) => sql`(${sql.join([sql`${r.id}::uuid`,
    ...r.cells.map((c) => (c === null ? sql`NULL::text` : sql`${c}::text`))])})`);
  const sets: RawBuilder<unknown>[] = w.columns.map((c, i) =>
    sql`${sql.ref(c.sqlColumn)} = ${sql.raw(`v.c${i}`)}${sql.raw(c.json ? '::jsonb' : '')}`);
  if (w.fileColumn) {
    sets.push(sql`${sql.ref(w.fileColumn)} = NULL`);
    if (isCustomers) sets.push(sql`profile_photo_content_type = NULL`);
  }
  if (isCustomers) sets.push(sql`redacted_at = ${w.at}`, sql`email_bidx = NULL`, sql`external_id_bidx = NULL`);
  sets.push(sql`updated_at = ${w.at}`);
  const names = sql.raw(['id', ...w.columns.map((_c, i) => `c${i}`)].join(', '));
  const r = await sql`UPDATE ${sql.table(table)} AS t SET ${sql.join(sets)}
    FROM (VALUES ${sql.join(values)}) AS v(${names}) WHERE t.id = v.id`.execute(trx);
  return Number(r.numAffectedRows ?? 0);
}

/** Deletes the customers' activity except their `customer.deleted` entries. */
export async function purgeActivity(trx: Db, ids: string[]): Promise<number> {
  const purged = await sql`DELETE FROM activity WHERE customer_id IN (${list(ids)}) AND type <> 'customer.deleted'`.execute(trx);
  return Number(purged.numAffectedRows ?? 0);
}

export const deletedEntries = (trx: Db, ids: string[]) => trx.selectFrom('activity').select(['id', 'customerId', 'details'])
  .where('customerId', 'in', ids).where('type', '=', 'customer.deleted').execute();

/** Replaces the details of activity entries (one statement). */
export async function setActivityDetails(trx: Db, entries: Array<{ id: string; details: unknown }>): Promise<void> {
  if (entries.length === 0) return;
  const values = entries.map((e) => sql`(${e.id}, ${JSON.stringify(e.details)})`);
  await sql`UPDATE activity AS a SET details = v.details::jsonb FROM (VALUES ${sql.join(values)}) AS v(id, details)
    WHERE a.id = v.id::uuid`.execute(trx);
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
