import { sql, type Kysely, type QueryResult, type RawBuilder } from 'kysely';
import type { Db } from '../db/database.ts';

/** SQL for writing a database backup (generic table dump); the file format lives in database-backup.ts. */

const PAGE_ROWS = 1000;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RawDb = Kysely<any>;
const raw = (db: Db) => db.withoutPlugins() as RawDb;

export async function baseTableNamesSorted(db: Db): Promise<string[]> {
  const t = await sql<{ table_name: string }>`
    SELECT table_name FROM information_schema.tables
    WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`.execute(raw(db));
  return t.rows.map((r) => r.table_name);
}

/** Foreign keys of the schema as child → parent table pairs. */
export async function foreignKeyPairs(db: Db): Promise<Array<{ child: string; parent: string }>> {
  const fks = await sql<{ child: string; parent: string }>`
    SELECT c.relname AS child, p.relname AS parent FROM pg_constraint k
    JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE k.contype = 'f' AND n.nspname = current_schema()`.execute(raw(db));
  return fks.rows;
}

export async function migrationNamesSorted(db: Db): Promise<string[]> {
  const migrations = await sql<{ name: string }>`SELECT name FROM lethe_migrations ORDER BY name`.execute(raw(db));
  return migrations.rows.map((m) => m.name);
}

export async function primaryKeys(db: Db): Promise<Map<string, Array<{ column: string; type: string }>>> {
  const r = await sql<{ table_name: string; column_name: string; udt_name: string }>`
    SELECT kcu.table_name, kcu.column_name, c.udt_name
    FROM information_schema.table_constraints tc
    JOIN information_schema.key_column_usage kcu
      ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema AND kcu.table_name = tc.table_name
    JOIN information_schema.columns c
      ON c.table_schema = kcu.table_schema AND c.table_name = kcu.table_name AND c.column_name = kcu.column_name
    WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = current_schema()
    ORDER BY kcu.table_name, kcu.ordinal_position`.execute(raw(db));
  const out = new Map<string, Array<{ column: string; type: string }>>();
  for (const row of r.rows) {
    const list = out.get(row.table_name) ?? [];
    list.push({ column: row.column_name, type: row.udt_name });
    out.set(row.table_name, list);
  }
  return out;
}

/** Every row of a table as JSON text, page by page along its primary key (constant memory). */
export async function* tableRows(db: Db, table: string, pk: Array<{ column: string; type: string }> | undefined): AsyncGenerator<string> {
  const r = raw(db);
  if (!pk || pk.length === 0) {
    const all = await sql<{ j: string }>`SELECT row_to_json(t)::text AS j FROM ${sql.table(table)} t`.execute(r);
    for (const row of all.rows) yield row.j;
    return;
  }
  const cols = pk.map((k) => sql.ref(`t.${k.column}`));
  let last: string[] | null = null;
  for (;;) {
    const after: RawBuilder<unknown> = last
      ? sql`WHERE (${sql.join(cols)}) > (${sql.join(last.map((v, i) => sql`${v}::${sql.raw(pk[i]!.type)}`))})`
      : sql``;
    const page: QueryResult<Record<string, string>> = await sql<Record<string, string>>`
      SELECT row_to_json(t)::text AS j, ${sql.join(pk.map((k, i) => sql`${sql.ref(`t.${k.column}`)}::text AS ${sql.ref(`k${i}`)}`))}
      FROM ${sql.table(table)} t ${after} ORDER BY ${sql.join(cols)} LIMIT ${PAGE_ROWS}`.execute(r);
    for (const row of page.rows) yield row.j!;
    if (page.rows.length < PAGE_ROWS) return;
    const end: Record<string, string> = page.rows[page.rows.length - 1]!;
    last = pk.map((_k, i) => end[`k${i}`]!);
  }
}
