import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createTestEnv, type TestEnv } from './helpers/runtime.ts';
import { CASCADE } from '../src/erasure/cascade.ts';
import { DATA_MAP, UNMAPPED_TABLES } from '../src/erasure/data-map.ts';
import { NOT_NULL_PERSONAL, POLICY_FIELDS } from '../src/erasure/redaction-policy.ts';

let env: TestEnv;
let columns: Array<{ table: string; column: string; nullable: boolean; type: string }>;

beforeAll(async () => {
  env = await createTestEnv();
  // Every column of every base table, read from the database itself (not from the map).
  const r = await sql<Record<string, string>>`
    SELECT c.table_name, c.column_name, c.is_nullable, c.data_type
    FROM information_schema.columns c
    JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
    ORDER BY c.table_name, c.ordinal_position`.execute(env.ctx.db);
  // CamelCasePlugin renames result keys of raw queries.
  columns = r.rows.map((x) => ({
    table: x.tableName ?? x.table_name!, column: x.columnName ?? x.column_name!,
    nullable: (x.isNullable ?? x.is_nullable) === 'YES', type: x.dataType ?? x.data_type!,
  }));
});
afterAll(async () => env?.close());

describe('THE data map classifies the whole database', () => {
  it('every table is in DATA_MAP (or is the migration tool\'s)', () => {
    const tables = [...new Set(columns.map((c) => c.table))];
    expect(tables.length).toBeGreaterThan(15);
    const missing = tables.filter((t) => !(t in DATA_MAP) && !UNMAPPED_TABLES.has(t));
    expect(missing, `tables the data map does not classify: ${missing.join(', ')}`).toEqual([]);
  });

  it('every column of every mapped table is classified', () => {
    const missing = columns.filter((c) => c.table in DATA_MAP && !(c.column in DATA_MAP[c.table]!.columns))
      .map((c) => `${c.table}.${c.column}`);
    expect(missing, `columns the data map does not classify: ${missing.join(', ')}`).toEqual([]);
  });

  it('the map declares no column the database does not have (for tables that exist)', () => {
    const have = new Set(columns.map((c) => `${c.table}.${c.column}`));
    const tables = new Set(columns.map((c) => c.table));
    const stale = Object.entries(DATA_MAP).filter(([t]) => tables.has(t))
      .flatMap(([t, m]) => Object.keys(m.columns).map((c) => `${t}.${c}`)).filter((k) => !have.has(k));
    expect(stale, `data-map entries with no column: ${stale.join(', ')}`).toEqual([]);
  });

  it('every personal column is acted on at deletion: a policy field of the customer\'s records, or in a purged table', () => {
    const policyColumns = new Set(POLICY_FIELDS.map((f) => `${f.sqlTable}.${f.sqlColumn}`));
    const unhandled = Object.entries(DATA_MAP).flatMap(([t, m]) => Object.entries(m.columns)
      .filter(([, col]) => col.personal).map(([c]) => `${t}.${c}`))
      .filter((k) => !policyColumns.has(k) && CASCADE[k.split('.')[0]!] !== 'purge');
    expect(unhandled, `personal columns no deletion step handles: ${unhandled.join(', ')}`).toEqual([]);
  });

  it('policy fields: default action allowed, masks have a shape, NOT NULL columns are not nullified', () => {
    const notNull = new Set(columns.filter((c) => !c.nullable).map((c) => `${c.table}.${c.column}`));
    for (const f of POLICY_FIELDS) {
      const k = `${f.sqlTable}.${f.sqlColumn}`;
      expect(f.allowed, f.key).toContain(f.defaultAction);
      if (f.defaultAction === 'mask') expect(f.column.mask, f.key).toBeDefined();
      if (f.column.mask === 'metadata') continue; // a NOT NULL object: nullify empties it
      expect(NOT_NULL_PERSONAL.has(k), `${k}: NOT_NULL_PERSONAL must match the schema`).toBe(notNull.has(k));
    }
    expect(new Set(POLICY_FIELDS.map((f) => f.key)).size).toBe(POLICY_FIELDS.length);
  });
});
