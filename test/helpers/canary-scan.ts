import { sql } from 'kysely';
import type { Db } from '../../src/db/database.ts';

export interface Hit { table: string; column: string; needle: string; rows: number }

/**
 * Every text, varchar, char, JSON, JSONB, array and bytea column of every base table, found
 * through information_schema (not the data map), searched for each needle.
 */
export async function scanColumns(db: Db, needles: string[]): Promise<{ hits: Hit[]; columnsScanned: number }> {
  const r = await sql<Record<string, string>>`
    SELECT c.table_name, c.column_name, c.data_type
    FROM information_schema.columns c
    JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
      AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea', 'ARRAY')`.execute(db);
  const cols = r.rows.map((x) => ({ table: x.tableName ?? x.table_name!, column: x.columnName ?? x.column_name!, type: x.dataType ?? x.data_type! }));
  const hits: Hit[] = [];
  for (const c of cols) {
    for (const needle of needles) {
      const cond = c.type === 'bytea'
        ? sql`position(convert_to(${needle}, 'UTF8') in ${sql.ref(c.column)}) > 0`
        : sql`${sql.ref(c.column)}::text ILIKE ${`%${needle}%`}`;
      const q = await sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql.table(c.table)} WHERE ${cond}`.execute(db);
      const rows = Number(q.rows[0]!.n);
      if (rows > 0) hits.push({ table: c.table, column: c.column, needle, rows });
    }
  }
  return { hits, columnsScanned: cols.length };
}
