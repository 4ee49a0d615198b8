import { sql } from 'kysely';
import type { Db } from '../db/database.ts';

/** SQL of the idempotency store (`idempotency_keys`). */

/** Claims (key id, key) for a request; false when a row exists already. */
export async function claim(db: Db, c: { keyId: string; key: string; method: string; path: string; bodyHash: string; at: Date }): Promise<boolean> {
  const inserted = await db.insertInto('idempotencyKeys').values({
    apiKeyId: c.keyId, key: c.key, method: c.method, path: c.path, bodyHash: c.bodyHash,
    statusCode: null, responseBody: null, customerId: null, createdAt: c.at,
  }).onConflict((oc) => oc.columns(['apiKeyId', 'key']).doNothing()).returning('key').executeTakeFirst();
  return inserted !== undefined;
}

export const find = (db: Db, keyId: string, key: string) =>
  db.selectFrom('idempotencyKeys').selectAll().where('apiKeyId', '=', keyId).where('key', '=', key).executeTakeFirst();

/** Removes the claim (only the row created at `createdAt`, when given). */
export async function release(db: Db, keyId: string, key: string, createdAt?: Date): Promise<void> {
  let q = db.deleteFrom('idempotencyKeys').where('apiKeyId', '=', keyId).where('key', '=', key);
  if (createdAt) q = q.where('createdAt', '=', createdAt);
  await q.execute();
}

/** Holds a living customer's row FOR SHARE until commit; false when it is deleted. */
export async function holdLiveCustomer(trx: Db, customerId: string): Promise<boolean> {
  const live = await sql`SELECT 1 FROM customers WHERE id = ${customerId} AND deleted_at IS NULL FOR SHARE`.execute(trx);
  return live.rows.length > 0;
}

export async function storeResponse(trx: Db, keyId: string, key: string, r: { statusCode: number; body: unknown; customerId: string | null }) {
  await trx.updateTable('idempotencyKeys')
    .set({ statusCode: r.statusCode, responseBody: JSON.stringify(r.body), customerId: r.customerId })
    .where('apiKeyId', '=', keyId).where('key', '=', key).execute();
}

/** Deletes stored responses created before `cutoff` (the retention job). */
export async function purgeBefore(db: Db, cutoff: Date): Promise<number> {
  const res = await db.deleteFrom('idempotencyKeys').where('createdAt', '<', cutoff).executeTakeFirst();
  return Number(res.numDeletedRows);
}
