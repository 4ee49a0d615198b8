import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { CollectionDef } from '../customers/collections.ts';

/** SQL of one record's erasure (DELETE /v1/customers/{id}/{collection}/{itemId}); its redaction is redaction.repo.ts. */

/** Locks one living (not removed) record of the customer; false when there is none. */
export async function lockLiveRecord(trx: Db, def: CollectionDef, customerId: string, recordId: string): Promise<boolean> {
  const found = await sql<{ id: string }>`SELECT id FROM ${sql.table(def.sqlTable)}
    WHERE id = ${recordId} AND customer_id = ${customerId} AND deleted_at IS NULL FOR UPDATE`.execute(trx);
  return found.rows.length > 0;
}

export async function softDeleteRecord(trx: Db, def: CollectionDef, recordId: string, at: Date): Promise<void> {
  await sql`UPDATE ${sql.table(def.sqlTable)} SET deleted_at = ${at}, updated_at = ${at} WHERE id = ${recordId}`.execute(trx);
}
