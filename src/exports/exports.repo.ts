import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { isoUtcSql } from '../db/json-values.ts';
import { ident } from '../db/sql-text.ts';
import { sqlColumnOf, type DatasetDef, type ExportColumn } from './export-datasets.ts';

/**
 * The export's SELECT: one text field per export column, in column order, then what the dataset
 * rules read (META fields), then the living customer's wrapped key. Every field is cast to text by
 * the database (timestamps as JavaScript's toISOString writes them), so the same statement read by
 * COPY (PostgreSQL) or in keyset batches (PGlite) gives the same fields and the driver parses nothing.
 */

/** How a field's text becomes the value the driver used to give (export-format.ts). */
export type Kind = 'text' | 'time' | 'bool' | 'json' | 'number';

/** The trailing fields after the export columns, in this order. */
export const META = ['id', 'customerId', 'customerDeleted', 'deleted', 'customerRef', 'keyEpoch', 'keyWrapped'] as const;

export interface ExportSelect {
  kinds: Kind[];
  /** The select list (fields f0, f1, …). */
  fields: string;
  /** FROM … with its joins. */
  from: string;
  /** ORDER BY … (the keyset order of the batched reads, and COPY's). */
  order: string;
  /** Fields per row (export columns + META). */
  width: number;
}

/** SQL types by column, read once per database and table (information_schema). */
const typeCache = new WeakMap<Db, Map<string, Promise<Map<string, string>>>>();
function columnTypes(db: Db, table: string): Promise<Map<string, string>> {
  let tables = typeCache.get(db);
  if (!tables) { tables = new Map(); typeCache.set(db, tables); }
  let types = tables.get(table);
  if (!types) {
    types = sql<{ name: string; type: string }>`SELECT column_name AS name, data_type AS type FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = ${table}`.execute(db)
      .then((r) => new Map(r.rows.map((x) => [x.name, x.type])));
    types.catch(() => tables.delete(table));
    tables.set(table, types);
  }
  return types;
}

function kindOf(type: string): Kind {
  if (type.startsWith('timestamp')) return 'time';
  if (type === 'boolean') return 'bool';
  if (type === 'jsonb' || type === 'json') return 'json';
  // bigint is read as a JS number (database.ts), like the integer types.
  if (type === 'integer' || type === 'bigint' || type === 'smallint' || type === 'double precision' || type === 'real') return 'number';
  // numeric reads differently through the two drivers; the data map has none: refuse rather than guess.
  if (type === 'numeric' || type === 'ARRAY' || type === 'date') throw new Error(`export: columns of type ${type} are not supported`);
  return 'text';
}

/** The dataset's SELECT (r: the table; c: its customer; k: the living customer's key). */
export async function exportSelect(db: Db, def: DatasetDef, columns: readonly ExportColumn[]): Promise<ExportSelect> {
  const types = await columnTypes(db, def.table);
  const kinds: Kind[] = [];
  const list: string[] = [];
  for (const c of columns) {
    const column = sqlColumnOf(c);
    const type = types.get(column);
    if (!type) throw new Error(`export: ${def.table}.${column} is not in the database`);
    if (c.derive) { list.push(`(r.${ident(column)} IS NOT NULL)::text`); kinds.push('bool'); continue; }
    const kind = kindOf(type);
    list.push(kind === 'time' ? isoUtcSql(`r.${ident(column)}`) : `r.${ident(column)}::text`);
    kinds.push(kind);
  }
  const own = def.table === 'customers';
  const customerDeleted = own ? 'r.deleted_at IS NOT NULL' : 'c.deleted_at IS NOT NULL';
  list.push(
    'r.id::text',
    `r.${ident(def.customerColumn)}::text`,
    `(${customerDeleted})::text`,
    types.has('deleted_at') ? '(r.deleted_at IS NOT NULL)::text' : 'NULL',
    types.has('customer_ref') ? 'r.customer_ref::text' : 'NULL',
    def.livingCustomer ? 'k.epoch_id::text' : 'NULL',
    def.livingCustomer ? `encode(k.wrapped, 'hex')` : 'NULL',
  );
  let from = `FROM ${ident(def.table)} r`;
  if (!own) from += ` LEFT JOIN customers c ON c.id = r.${ident(def.customerColumn)}`;
  // The living customer's wrapped key comes with its rows: no key lookup per batch.
  if (def.livingCustomer) from += ` LEFT JOIN customer_keys k ON k.customer_id = r.${ident(def.customerColumn)} AND NOT (${customerDeleted})`;
  return {
    kinds,
    fields: list.map((e, i) => `${e} AS f${i}`).join(', '),
    from,
    order: def.byTime ? 'ORDER BY r.created_at, r.id' : 'ORDER BY r.id',
    width: list.length,
  };
}

/** The whole dataset as one statement, for COPY (TO STDOUT, text format). */
export const copyStatement = (s: ExportSelect): string => `COPY (SELECT ${s.fields} ${s.from} ${s.order}) TO STDOUT`;

/** Position after the last row of a batch. `ts`: created_at as PostgreSQL text (full precision). */
export interface Position { ts?: string; id: string }

/**
 * At most `limit` rows after `after`, in the keyset order (each batch an index range scan: the
 * primary key, or the (created_at, id) page index), as text fields; then each row's position.
 */
export async function readBatch(db: Db, def: DatasetDef, s: ExportSelect, after: Position | null, limit: number):
  Promise<{ rows: Array<Array<string | null>>; last: Position | null }> {
  const where = !after ? sql``
    : def.byTime ? sql`WHERE (r.created_at, r.id) > (${after.ts}::timestamptz, ${after.id}::uuid)`
    : sql`WHERE r.id > ${after.id}::uuid`;
  const r = await sql<Record<string, string | null>>`${sql.raw(`SELECT ${s.fields}${def.byTime ? ', r.created_at::text AS pos' : ''} ${s.from}`)}
    ${where} ${sql.raw(s.order)} LIMIT ${limit}`.execute(db);
  const names = Array.from({ length: s.width }, (_, i) => `f${i}`);
  const rows = r.rows.map((row) => names.map((n) => row[n] ?? null));
  const tail = r.rows[r.rows.length - 1];
  return { rows, last: tail ? { id: tail[`f${s.width - META.length}`]!, ...(def.byTime ? { ts: tail.pos! } : {}) } : null };
}
