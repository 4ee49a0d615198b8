import { sql } from 'kysely';
import type { Db } from '../db/database.ts';

/**
 * Keyset-paginated reads for the dataset exports: each call returns at most `limit` rows after
 * the given position, in a stable order, so an export of any size holds one batch in memory.
 * Rows are camelCase (CamelCasePlugin) with every column of the table, plus what the export needs
 * to decide whether the row belongs to a deleted customer.
 */

/** Position after the last row of a batch. `ts` is the timestamp as PostgreSQL text (full precision). */
export interface Position { ts?: string; id: string }

export type Row = Record<string, unknown> & { id: string };

/**
 * Customers by primary key: the only index that covers living and deleted customers alike
 * (customers_page_idx is partial), so every batch is an index range scan.
 */
export async function customersAfter(db: Db, after: Position | null, limit: number): Promise<Row[]> {
  let q = db.selectFrom('customers').selectAll();
  if (after) q = q.where('id', '>', after.id);
  return await q.orderBy('id').limit(limit).execute() as Row[];
}

/** Transactions by (created_at, id) (transactions_page_idx), with whether the linked customer is deleted. */
export async function transactionsAfter(db: Db, after: Position | null, limit: number): Promise<Row[]> {
  let q = db.selectFrom('transactions as t')
    .leftJoin('customers as c', 'c.id', 't.customerId')
    .selectAll('t')
    .select([sql<string>`t.created_at::text`.as('positionTs'), 'c.deletedAt as customerDeletedAt']);
  if (after) q = q.where(sql<boolean>`(t.created_at, t.id) > (${after.ts}::timestamptz, ${after.id}::uuid)`);
  return await q.orderBy('t.createdAt').orderBy('t.id').limit(limit).execute() as Row[];
}

/** Activity entries by (created_at, id) (activity_page_idx), with whether their customer is deleted. */
export async function activityAfter(db: Db, after: Position | null, limit: number): Promise<Row[]> {
  let q = db.selectFrom('activity as a')
    .leftJoin('customers as c', 'c.id', 'a.customerId')
    .selectAll('a')
    .select([sql<string>`a.created_at::text`.as('positionTs'), 'c.deletedAt as customerDeletedAt']);
  if (after) q = q.where(sql<boolean>`(a.created_at, a.id) > (${after.ts}::timestamptz, ${after.id}::uuid)`);
  return await q.orderBy('a.createdAt').orderBy('a.id').limit(limit).execute() as Row[];
}

/**
 * Any customer collection by primary key (every batch an index range scan), with whether its
 * customer is deleted. Records removed one by one carry their own deleted_at.
 */
export function collectionAfter(sqlTable: string) {
  return async (db: Db, after: Position | null, limit: number): Promise<Row[]> => {
    const r = await sql<Row>`SELECT r.*, c.deleted_at AS customer_deleted_at FROM ${sql.table(sqlTable)} r
      LEFT JOIN customers c ON c.id = r.customer_id
      ${after ? sql`WHERE r.id > ${after.id}::uuid` : sql``}
      ORDER BY r.id LIMIT ${limit}`.execute(db);
    return r.rows;
  };
}
