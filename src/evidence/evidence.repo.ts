import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { decodeCursor } from '../http/pagination.ts';

/** Deletion receipts (rows of `deletions`), newest first, optionally within [from, to). */
export function listReceipts(db: Db, q: { from?: Date; to?: Date; cursor?: string; limit: number }) {
  let query = db.selectFrom('deletions').selectAll();
  if (q.from) query = query.where('deletedAt', '>=', q.from);
  if (q.to) query = query.where('deletedAt', '<', q.to);
  if (q.cursor) {
    const c = decodeCursor(q.cursor);
    query = query.where(sql<boolean>`(deleted_at, customer_id) < (${new Date(c.t)}, ${c.id}::uuid)`);
  }
  return query.orderBy('deletedAt', 'desc').orderBy('customerId', 'desc').limit(q.limit).execute();
}

/** Inserts a signing key unless its id exists; true when this call inserted it. */
export async function insertSigningKey(db: Db, k: { keyId: string; publicKey: string; sealedPrivateKey: Buffer; at: Date }): Promise<boolean> {
  const r = await db.insertInto('receiptSigningKeys')
    .values({ keyId: k.keyId, publicKey: k.publicKey, sealedPrivateKey: k.sealedPrivateKey, createdAt: k.at, retiredAt: null })
    .onConflict((oc) => oc.doNothing()).returning('keyId').executeTakeFirst();
  return r !== undefined;
}

/** The current (not retired) signing key, sealed. */
export const findCurrentSigningKey = (db: Db) =>
  db.selectFrom('receiptSigningKeys').select(['keyId', 'sealedPrivateKey']).where('retiredAt', 'is', null).executeTakeFirst();

/** Every public key ever used, oldest first. */
export const listPublicKeys = (db: Db) =>
  db.selectFrom('receiptSigningKeys').select(['keyId', 'algorithm', 'publicKey', 'createdAt', 'retiredAt'])
    .orderBy('createdAt').orderBy(sql`retired_at IS NULL`).orderBy('retiredAt').orderBy('keyId').execute();

/** Retires the current key; returns the ids retired. */
export async function retireCurrentKeys(trx: Db, at: Date): Promise<string[]> {
  const rows = await trx.updateTable('receiptSigningKeys').set({ retiredAt: at }).where('retiredAt', 'is', null).returning('keyId').execute();
  return rows.map((r) => r.keyId);
}
