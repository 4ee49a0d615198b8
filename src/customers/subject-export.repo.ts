import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { fromJson, isoUtcSql } from '../db/json-values.ts';
import { ident, SqlText } from '../db/sql-text.ts';

/** SQL of the data-subject export: it walks declarations (collections.ts, the data map), so the queries are generic. */

/** Columns of the candidate tables that exist in this database, in table order, with their types. */
export async function existingColumns(db: Db, tables: string[]): Promise<Array<{ tableName: string; columnName: string; dataType: string }>> {
  const r = await sql<{ tableName: string; columnName: string; dataType: string }>`
    SELECT table_name, column_name, data_type FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name IN (${sql.join(tables)})
    ORDER BY table_name, ordinal_position`.execute(db);
  return r.rows;
}

/** One list of the export: a table's rows of the customer, `columns` (SQL names) read as `keys`, in this order. */
export interface ExportList {
  table: string;
  columns: string[];
  /** The keys of each row's object (what the driver names the columns), in column order. */
  keys: string[];
  /** Column name → information_schema data_type. */
  types: ReadonlyMap<string, string>;
  /** Only rows not soft deleted. */
  liveOnly: boolean;
  orderBy: string[];
}

/**
 * Types whose JSON form reads back as the driver reads the column (text, uuid, jsonb, booleans,
 * integers: int8 is read as a number, as database.ts parses it), plus timestamptz, which is
 * written as the ISO string a JS Date of the driver's value gives (milliseconds, truncated).
 * A list with another type is read on its own (exportList).
 */
const JSON_SAFE = new Set(['uuid', 'text', 'character varying', 'jsonb', 'json', 'boolean', 'smallint', 'integer', 'bigint', 'timestamp with time zone']);
export const aggregatable = (l: ExportList) => l.columns.every((c) => JSON_SAFE.has(l.types.get(c) ?? ''));

/** A column as the json value it is exported as (SQL text: the export runs on every DELETE, in its archive). */
function jsonValue(l: ExportList, c: string): string {
  return l.types.get(c) === 'timestamp with time zone' ? isoUtcSql(ident(c)) : ident(c);
}

/** One parameter per list, as before: a table's customer_id type fixes its own parameter's type. */
const listWhere = (q: SqlText, l: ExportList, customerId: string): string =>
  `customer_id = ${q.param(customerId)}${l.liveOnly ? ' AND deleted_at IS NULL' : ''}`;

const orderBy = (l: ExportList): string => l.orderBy.map(ident).join(', ');

/**
 * Every list in one statement: each as a json array of row arrays (json keeps the values as
 * stored, in column order), turned back into objects keyed like the driver's rows. Dates come
 * back as the ISO strings the export writes anyway (its JSON round trip).
 */
export async function exportLists(db: Db, lists: ExportList[], customerId: string): Promise<Array<Array<Record<string, unknown>>>> {
  if (lists.length === 0) return [];
  const q = new SqlText();
  const [row] = await q.run<{ r: unknown }>(db, `SELECT ${exportListsJson(q, lists, customerId)} AS r`);
  return parseExportLists(row!.r, lists);
}

/** exportLists' read as one json expression of a statement built with `q` (a DELETE reads it with its blockers). */
export function exportListsJson(q: SqlText, lists: ExportList[], customerId: string): string {
  const parts = lists.map((l) => `(SELECT coalesce(json_agg(json_build_array(${l.columns.map((c) => jsonValue(l, c)).join(', ')})
    ORDER BY ${orderBy(l)}), '[]'::json) FROM ${ident(l.table)} WHERE ${listWhere(q, l, customerId)})`);
  return `json_build_array(${parts.join(', ')})`;
}

/** The value of exportListsJson: each list's rows keyed like the driver's rows. */
export function parseExportLists(value: unknown, lists: ExportList[]): Array<Array<Record<string, unknown>>> {
  const all = fromJson<unknown[][][]>(value);
  return lists.map((l, i) => all[i]!.map((a) => Object.fromEntries(l.keys.map((k, j) => [k, a[j]]))));
}

/** One list on its own (a column type JSON would change): the driver reads it. */
export async function exportList(db: Db, l: ExportList, customerId: string): Promise<Array<Record<string, unknown>>> {
  const q = new SqlText();
  const rows = await q.run<Record<string, unknown>>(db, `SELECT ${l.columns.map((c, j) => `${ident(c)} AS "k${j}"`).join(', ')}
    FROM ${ident(l.table)} WHERE ${listWhere(q, l, customerId)} ORDER BY ${orderBy(l)}`);
  return rows.map((row) => Object.fromEntries(l.keys.map((k, j) => [k, row[`k${j}`]])));
}
