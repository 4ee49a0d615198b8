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
  const r = await sql<{ pending: number; activeSubscriptions: number; activeLicenses: number; transactions: number; activity: number; applicationIds: unknown }>`
    SELECT
      (SELECT count(*) FROM transactions WHERE customer_id = ${customerId} AND status = 'pending') AS pending,
      (SELECT coalesce(jsonb_agg(d.a ORDER BY d.a), '[]'::jsonb) FROM (SELECT DISTINCT application_id AS a FROM licenses
        WHERE customer_id = ${customerId}) AS d) AS application_ids,
      (SELECT count(*) FROM subscriptions WHERE customer_id = ${customerId} AND deleted_at IS NULL AND status = 'active') AS active_subscriptions,
      (SELECT count(*) FROM licenses WHERE customer_id = ${customerId} AND deleted_at IS NULL AND status = 'active') AS active_licenses,
      (SELECT count(*) FROM transactions WHERE customer_id = ${customerId}) AS transactions,
      (SELECT count(*) FROM activity WHERE customer_id = ${customerId}) AS activity
  `.execute(db);
  const row = r.rows[0]!;
  return {
    pending: Number(row.pending), activeSubscriptions: Number(row.activeSubscriptions),
    activeLicenses: Number(row.activeLicenses), transactions: Number(row.transactions), activity: Number(row.activity),
    /** Applications the customer ever held a license for, cancelled or not (licensedApplicationIds). */
    applicationIds: (typeof row.applicationIds === 'string' ? JSON.parse(row.applicationIds) : row.applicationIds) as string[],
  };
}

/** Applications the customer ever held a license for, cancelled or not. */
export async function licensedApplicationIds(db: Db, customerId: string): Promise<string[]> {
  const rows = await db.selectFrom('licenses').select('applicationId').distinct()
    .where('customerId', '=', customerId).orderBy('applicationId').execute();
  return rows.map((r) => r.applicationId);
}

/**
 * The cascade in one statement (data-modifying CTEs, generated from the collection declarations):
 * every collection's live rows soft deleted, the ones with `cancelOnDelete` that were active
 * cancelled in the same UPDATE (one row version per record), the transactions unlinked to the
 * customer's pseudonym, the customer marked deleted. Returns the rows changed per collection path.
 */
export async function cascade(db: Db, customerId: string, ref: string, at: Date) {
  const parts = SOFT_DELETED.map((def, i) => {
    const name = sql.raw(`c${i}`);
    if (!def.cancelOnDelete) {
      return sql`${name} AS (UPDATE ${sql.table(def.sqlTable)} SET deleted_at = ${at}, updated_at = ${at}
        WHERE customer_id = ${customerId} AND deleted_at IS NULL RETURNING false AS cancelled)`;
    }
    // SET expressions read the row's previous values; the self join returns the previous status.
    return sql`${name} AS (UPDATE ${sql.table(def.sqlTable)} AS t SET deleted_at = ${at}, updated_at = ${at},
        status = CASE WHEN t.status = 'active' THEN 'cancelled' ELSE t.status END,
        cancelled_at = CASE WHEN t.status = 'active' THEN ${at} ELSE t.cancelled_at END
      FROM ${sql.table(def.sqlTable)} AS o
      WHERE o.id = t.id AND t.customer_id = ${customerId} AND t.deleted_at IS NULL RETURNING o.status = 'active' AS cancelled)`;
  });
  const counts = SOFT_DELETED.map((_d, i) => sql`(SELECT count(*) FROM ${sql.raw(`c${i}`)}) AS ${sql.raw(`d${i}`)},
    (SELECT count(*) FROM ${sql.raw(`c${i}`)} WHERE cancelled) AS ${sql.raw(`x${i}`)}`);
  const r = await sql<Record<string, string | number>>`WITH ${sql.join(parts)},
    tx AS (UPDATE transactions SET customer_id = NULL, customer_ref = ${ref}, updated_at = ${at}
      WHERE customer_id = ${customerId} RETURNING 1),
    cu AS (UPDATE customers SET deleted_at = ${at}, updated_at = ${at} WHERE id = ${customerId} RETURNING 1)
    SELECT ${sql.join(counts)}, (SELECT count(*) FROM tx) AS tx, (SELECT count(*) FROM cu) AS cu`.execute(db);
  const row = r.rows[0]!;
  const deleted: Record<string, number> = {};
  const cancelled: Record<string, number> = {};
  SOFT_DELETED.forEach((def, i) => {
    deleted[def.path] = Number(row[`d${i}`]);
    cancelled[def.table] = Number(row[`x${i}`]);
  });
  return { deleted, cancelled, preserved: Number(row.tx) };
}

/** The deletion receipt (one row per deleted customer). */
export async function insertReceipt(trx: Db, r: {
  customerId: string; deletedAt: Date; actorKeyId: string | null; counts: Record<string, number>; preservedTransactions: number;
  applicationsNotified: string[]; auditEventId: string; auditHash: string; redaction: Record<string, unknown> | null; backupId: string | null;
  /** The system actor when Lethe deleted on its own ("system:grace-periods"); null when a key did. */
  actor: string | null;
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
