import { type Kysely, sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { type CollectionDef, recordColumns } from './collections.ts';

/** SQL of the data-subject export: it walks declarations (collections.ts, the data map), so the queries are generic. */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

/** A collection's living records of the customer, oldest first (the columns collections.ts declares). */
export function collectionRecords(db: Db, def: CollectionDef, customerId: string): Promise<unknown[]> {
  let q = (db as unknown as AnyDb).selectFrom(def.table).select(recordColumns(def)).where('customerId', '=', customerId);
  if (def.softDelete) q = q.where('deletedAt', 'is', null);
  return q.orderBy('createdAt').orderBy('id').execute();
}

export const activityOf = (db: Db, customerId: string) =>
  db.selectFrom('activity').select(['id', 'type', 'recordId', 'details', 'createdAt'])
    .where('customerId', '=', customerId).orderBy('createdAt').orderBy('id').execute();

/** The customer's rows of another customer-linked table (only the given, non-secret columns). */
export async function tableRows(db: Db, table: string, columns: string[], customerId: string): Promise<Array<Record<string, unknown>>> {
  const hasDeletedAt = columns.includes('deleted_at');
  const rows = await sql<Record<string, unknown>>`
    SELECT ${sql.join(columns.map((c) => sql.ref(c)))} FROM ${sql.table(table)}
    WHERE customer_id = ${customerId} ${hasDeletedAt ? sql`AND deleted_at IS NULL` : sql``}
    ORDER BY ${columns.includes('created_at') ? sql`created_at, ` : sql``}${sql.ref(columns[0]!)}`.execute(db);
  return rows.rows;
}

/** Columns of the candidate tables that exist in this database, in table order. */
export async function existingColumns(db: Db, tables: string[]): Promise<Array<{ tableName: string; columnName: string }>> {
  const r = await sql<{ tableName: string; columnName: string }>`
    SELECT table_name, column_name FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name IN (${sql.join(tables)})
    ORDER BY table_name, ordinal_position`.execute(db);
  return r.rows;
}
