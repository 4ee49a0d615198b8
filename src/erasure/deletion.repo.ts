import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { COLLECTIONS, type CollectionDef } from '../customers/collections.ts';

export const SOFT_DELETED = COLLECTIONS.filter((c) => c.softDelete);

export async function countLive(db: Db, customerId: string): Promise<Record<string, number>> {
  // One round trip for every collection's count.
  const parts = SOFT_DELETED.map((c) =>
    sql`(SELECT count(*) FROM ${sql.table(c.sqlTable)} WHERE customer_id = ${customerId} AND deleted_at IS NULL)`);
  const row = await sql<Record<string, string | number>>`SELECT ${sql.join(parts.map((p, i) => sql`${p} AS ${sql.ref(`c${i}`)}`))}`
    .execute(db);
  const r = row.rows[0]!;
  return Object.fromEntries(SOFT_DELETED.map((c, i) => [c.path, Number(r[`c${i}`])]));
}

export async function blockerCounts(db: Db, customerId: string) {
  const r = await sql<{ pending: number; activeSubscriptions: number; activeLicenses: number; transactions: number; activity: number }>`
    SELECT
      (SELECT count(*) FROM transactions WHERE customer_id = ${customerId} AND status = 'pending') AS pending,
      (SELECT count(*) FROM subscriptions WHERE customer_id = ${customerId} AND deleted_at IS NULL AND status = 'active') AS active_subscriptions,
      (SELECT count(*) FROM licenses WHERE customer_id = ${customerId} AND deleted_at IS NULL AND status = 'active') AS active_licenses,
      (SELECT count(*) FROM transactions WHERE customer_id = ${customerId}) AS transactions,
      (SELECT count(*) FROM activity WHERE customer_id = ${customerId}) AS activity
  `.execute(db);
  const row = r.rows[0]!;
  return {
    pending: Number(row.pending), activeSubscriptions: Number(row.activeSubscriptions),
    activeLicenses: Number(row.activeLicenses), transactions: Number(row.transactions), activity: Number(row.activity),
  };
}

/** Applications the customer ever held a license for, cancelled or not. */
export async function licensedApplicationIds(db: Db, customerId: string): Promise<string[]> {
  const rows = await db.selectFrom('licenses').select('applicationId').distinct()
    .where('customerId', '=', customerId).orderBy('applicationId').execute();
  return rows.map((r) => r.applicationId);
}

/** Soft deletes a collection's live rows; subscriptions and licenses that were active are cancelled first. */
export async function softDeleteCollection(db: Db, def: CollectionDef, customerId: string, at: Date) {
  let cancelled = 0;
  if (def.table === 'subscriptions' || def.table === 'licenses') {
    const r = await sql`
      UPDATE ${sql.table(def.sqlTable)} SET status = 'cancelled', cancelled_at = ${at}, updated_at = ${at}
      WHERE customer_id = ${customerId} AND deleted_at IS NULL AND status = 'active'`.execute(db);
    cancelled = Number(r.numAffectedRows ?? 0);
  }
  const r = await sql`
    UPDATE ${sql.table(def.sqlTable)} SET deleted_at = ${at}, updated_at = ${at}
    WHERE customer_id = ${customerId} AND deleted_at IS NULL`.execute(db);
  return { deleted: Number(r.numAffectedRows ?? 0), cancelled };
}

export async function unlinkTransactions(db: Db, customerId: string, ref: string, at: Date): Promise<number> {
  const r = await db.updateTable('transactions').set({ customerId: null, customerRef: ref, updatedAt: at })
    .where('customerId', '=', customerId).executeTakeFirst();
  return Number(r.numUpdatedRows);
}

export async function markCustomerDeleted(trx: Db, customerId: string, at: Date): Promise<void> {
  await trx.updateTable('customers').set({ deletedAt: at, updatedAt: at }).where('id', '=', customerId).execute();
}

/** The deletion receipt (one row per deleted customer). */
export async function insertReceipt(trx: Db, r: {
  customerId: string; deletedAt: Date; actorKeyId: string | null; counts: Record<string, number>; preservedTransactions: number;
  applicationsNotified: string[]; auditEventId: string; auditHash: string; redaction: Record<string, unknown> | null; backupId: string | null;
  keyDestroyedAt: string | null; keyEpochId: string | null;
}): Promise<void> {
  await trx.insertInto('deletions').values({
    ...r, counts: JSON.stringify(r.counts), applicationsNotified: JSON.stringify(r.applicationsNotified),
    redaction: r.redaction === null ? null : JSON.stringify(r.redaction),
  }).execute();
}

export const findReceipt = (db: Db, customerId: string) =>
  db.selectFrom('deletions').selectAll().where('customerId', '=', customerId).executeTakeFirst();

/** The receipts' redaction record, once the backlog redacted those customers. */
/** The receipt's crypto-shredding columns: when the customer's data key was destroyed, under which epoch. */
export async function setKeyDestroyed(trx: Db, customerId: string, at: Date, keyEpochId: string): Promise<void> {
  await trx.updateTable('deletions').set({ keyDestroyedAt: at, keyEpochId }).where('customerId', '=', customerId).execute();
}

export async function setRedactionRecord(trx: Db, customerIds: string[], record: Record<string, unknown>): Promise<void> {
  await trx.updateTable('deletions').set({ redaction: JSON.stringify(record) }).where('customerId', 'in', customerIds).execute();
}
