import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { toSnake } from '../erasure/data-map.ts';

/** SQL for the data migration of an earlier release's clear data; the batching rules live in data-migration.ts. */

export async function migrationDone(db: Db): Promise<boolean> {
  const s = await db.selectFrom('cryptoState').select('migrationDoneAt').where('id', '=', 1).executeTakeFirstOrThrow();
  return s.migrationDoneAt !== null;
}

/** The crypto_state row, locked: one batch at a time across instances. */
export function lockCryptoStateRow(trx: Db) {
  return trx.selectFrom('cryptoState').selectAll().where('id', '=', 1).forUpdate().executeTakeFirstOrThrow();
}

/** The next customers after the cursor, by id, locked. */
export function lockCustomersAfter(trx: Db, cursor: string | null, limit: number) {
  let q = trx.selectFrom('customers').selectAll().orderBy('id').limit(limit).forUpdate();
  if (cursor) q = q.where('id', '>', cursor);
  return q.execute();
}

export async function updateCustomerColumns(trx: Db, customerId: string, set: Record<string, unknown>): Promise<void> {
  await trx.updateTable('customers').set(set as never).where('id', '=', customerId).execute();
}

/** Rows of a personal table belonging to the customer: id and the given columns. */
export async function personalRowsOf(trx: Db, table: string, columns: string[], customerId: string) {
  const cols = columns.map((col) => sql.ref(col));
  const rows = await sql<Record<string, unknown>>`SELECT id, ${sql.join(cols)} FROM ${sql.table(table)}
          WHERE customer_id = ${customerId}`.execute(trx);
  return rows.rows;
}

/** Sets columns (camelCase keys) of one row of a personal table. */
export async function updatePersonalRow(trx: Db, table: string, id: unknown, set: Record<string, unknown>): Promise<void> {
  await sql`UPDATE ${sql.table(table)} SET ${sql.join(Object.entries(set).map(([k, v]) =>
    sql`${sql.ref(toSnake(k))} = ${v}`))} WHERE id = ${id}`.execute(trx);
}

export function storedResponsesOf(trx: Db, customerId: string) {
  return trx.selectFrom('idempotencyKeys').select(['apiKeyId', 'key', 'responseBody'])
    .where('customerId', '=', customerId).where('responseBody', 'is not', null).execute();
}

export async function setStoredResponse(trx: Db, apiKeyId: string, key: string, responseBody: string): Promise<void> {
  await trx.updateTable('idempotencyKeys').set({ responseBody })
    .where('apiKeyId', '=', apiKeyId).where('key', '=', key).execute();
}

export async function setMigrationCursor(trx: Db, cursor: string): Promise<void> {
  await trx.updateTable('cryptoState').set({ migrationCursor: cursor }).where('id', '=', 1).execute();
}

export async function legacyArchiveIds(db: Db): Promise<string[]> {
  const rows = await db.selectFrom('backupArchives').select('id').where('keyEpochId', 'is', null).where('destroyedAt', 'is', null).execute();
  return rows.map((a) => a.id);
}

/** Marks the migration done; false when another instance already did. */
export async function markMigrationDone(trx: Db, at: Date): Promise<boolean> {
  const u = await trx.updateTable('cryptoState').set({ migrationDoneAt: at }).where('id', '=', 1)
    .where('migrationDoneAt', 'is', null).executeTakeFirst();
  return Number(u.numUpdatedRows) !== 0;
}

export async function vacuumFull(db: Db, table: string): Promise<void> {
  await sql`VACUUM FULL ${sql.table(table)}`.execute(db);
}
