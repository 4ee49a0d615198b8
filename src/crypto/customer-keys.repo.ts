import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { SqlText } from '../db/sql-text.ts';
import { isoUtcSql } from '../db/json-values.ts';

/** SQL for customer data keys and key epochs; key handling lives in customer-keys.ts. */

/** Serialises epoch changes across instances (row lock on crypto_state). */
export async function lockCryptoState(trx: Db): Promise<void> {
  await sql`SELECT id FROM crypto_state WHERE id = 1 FOR UPDATE`.execute(trx);
}

export function findCurrentEpoch(db: Db) {
  return db.selectFrom('keyEpochs').select(['id', 'seq', 'createdAt'])
    .where('retiredAt', 'is', null).where('destroyedAt', 'is', null).orderBy('seq', 'desc').limit(1).executeTakeFirst();
}

/** findCurrentEpoch as a subselect (json [id, seq, created_at as an ISO string]), for adoptEpoch. */
export const currentEpochJson = (): string => `(SELECT json_build_array(id, seq, ${isoUtcSql('created_at')})
  FROM key_epochs WHERE retired_at IS NULL AND destroyed_at IS NULL ORDER BY seq DESC LIMIT 1)`;

export async function listEpochIds(db: Db): Promise<string[]> {
  return (await db.selectFrom('keyEpochs').select('id').execute()).map((e) => e.id);
}

export async function listUsedEpochIds(db: Db): Promise<string[]> {
  return (await db.selectFrom('keyEpochs').select('id').where('destroyedAt', 'is', null).execute()).map((e) => e.id);
}

export async function maxEpochSeq(trx: Db): Promise<number> {
  const last = await trx.selectFrom('keyEpochs').select(sql<number>`coalesce(max(seq), 0)`.as('m')).executeTakeFirstOrThrow();
  return Number(last.m);
}

export interface NewEpoch { id: string; seq: number; createdAt: Date; retiredAt: Date | null }

export async function insertEpoch(trx: Db, e: NewEpoch, ignoreExisting = false): Promise<void> {
  let q = trx.insertInto('keyEpochs').values({ ...e, outOfUseSince: null, destroyedAt: null });
  if (ignoreExisting) q = q.onConflict((oc) => oc.column('id').doNothing());
  await q.execute();
}

export async function setEpochStamp(trx: Db, id: string, set: { retiredAt: Date } | { outOfUseSince: Date | null } | { destroyedAt: Date }): Promise<void> {
  await trx.updateTable('keyEpochs').set(set).where('id', '=', id).execute();
}

/** Binds the database to a keyring if unbound; returns the keyring id the database is bound to. */
export async function bindKeyring(db: Db, keyringId: string): Promise<string | null> {
  await db.updateTable('cryptoState').set({ keyringId }).where('id', '=', 1).where('keyringId', 'is', null).execute();
  const s = await db.selectFrom('cryptoState').select('keyringId').where('id', '=', 1).executeTakeFirstOrThrow();
  return s.keyringId;
}

export function wrappedKeysOf(db: Db, customerIds: string[]) {
  // Text, not a Kysely builder: read by every GET of a customer (src/db/sql-text.ts).
  const q = new SqlText();
  return q.runCamel<{ customerId: string; epochId: string; wrapped: Buffer }>(db,
    `SELECT customer_id, epoch_id, wrapped FROM customer_keys WHERE customer_id IN (${q.list(customerIds)})`);
}

/**
 * The customers' wrapped keys as a subselect (a json array of [customer id, epoch id, base64]),
 * for a statement that reads them beside other things (customer-keys.ts adoptWrapped reads it).
 */
export const wrappedKeysJson = (q: SqlText, customerIds: string[]): string => `(SELECT coalesce(json_agg(json_build_array(customer_id, epoch_id,
  encode(wrapped, 'base64'))), '[]'::json) FROM customer_keys WHERE customer_id IN (${q.list(customerIds)}))`;

/** Inserts a wrapped key unless the customer has one; true when this call inserted it. */
export async function insertWrappedKey(db: Db, k: { customerId: string; epochId: string; wrapped: Buffer; at: Date }): Promise<boolean> {
  const r = await db.insertInto('customerKeys')
    .values({ customerId: k.customerId, epochId: k.epochId, wrapped: k.wrapped, createdAt: k.at, wrappedAt: k.at })
    .onConflict((oc) => oc.column('customerId').doNothing()).returning('customerId').executeTakeFirst();
  return r !== undefined;
}

/**
 * deleteKeys as a data-modifying WITH part (`name AS (...)`) of a statement built with `q`: its rows
 * are the deleted keys' customer and epoch. Text, not a Kysely builder: part of every DELETE.
 */
export const deleteKeysCte = (q: SqlText, name: string, customerIds: string[]): string => `${name} AS (DELETE FROM customer_keys
  WHERE customer_id IN (${q.list(customerIds)}) RETURNING customer_id, epoch_id)`;

export function deleteKeys(trx: Db, customerIds: string[]) {
  return trx.deleteFrom('customerKeys').where('customerId', 'in', customerIds)
    .returning(['customerId', 'epochId']).execute();
}

/** A batch of keys wrapped by another epoch than `epochId`, locked (skipping locked rows). */
export async function lockKeysToRewrap(trx: Db, epochId: string, batch: number) {
  const rows = await sql<{ customer_id: string; epoch_id: string; wrapped: Buffer }>`
    SELECT customer_id, epoch_id, wrapped FROM customer_keys WHERE epoch_id <> ${epochId}
    ORDER BY customer_id LIMIT ${batch} FOR UPDATE SKIP LOCKED`.execute(trx.withoutPlugins());
  return rows.rows;
}

export async function setWrappedKey(trx: Db, customerId: string, epochId: string, wrapped: Buffer, at: Date): Promise<void> {
  await trx.updateTable('customerKeys').set({ epochId, wrapped, wrappedAt: at }).where('customerId', '=', customerId).execute();
}

export function listRetiredLiveEpochs(db: Db) {
  return db.selectFrom('keyEpochs').selectAll().where('retiredAt', 'is not', null)
    .where('destroyedAt', 'is', null).orderBy('seq').execute();
}

export function lockLiveEpoch(trx: Db, id: string) {
  return trx.selectFrom('keyEpochs').selectAll().where('id', '=', id).where('destroyedAt', 'is', null)
    .forUpdate().executeTakeFirst();
}

export async function epochWrapsAnyKey(trx: Db, epochId: string): Promise<boolean> {
  const used = await trx.selectFrom('customerKeys').select('customerId').where('epochId', '=', epochId).limit(1).executeTakeFirst();
  return used !== undefined;
}

export function findEpoch(db: Db, id: string) {
  return db.selectFrom('keyEpochs').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function epochDays(db: Db): Promise<number> {
  const s = await db.selectFrom('settings').select('keyEpochDays').where('id', '=', 1).executeTakeFirst();
  return s?.keyEpochDays ?? 7;
}

export async function retentionDaysOf(db: Db): Promise<number> {
  const s = await db.selectFrom('settings').select('backupRetentionDays').where('id', '=', 1).executeTakeFirst();
  return s?.backupRetentionDays ?? 30;
}
