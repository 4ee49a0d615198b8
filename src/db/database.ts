import fs from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { CamelCasePlugin, Kysely, PGliteDialect, PostgresDialect } from 'kysely';
import { Migrator, type Migration } from 'kysely/migration';
import pg from 'pg';
import { PreparingClient } from './prepared-client.ts';
import type { Database } from './schema.ts';

export type Db = Kysely<Database>;
export type DbKind = 'pglite' | 'postgres';

export interface DatabaseHandle {
  db: Db;
  kind: DbKind;
  close(): Promise<void>;
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;
// Amounts are bigint in SQL but fit a JS number (2^53) for any real money value.
const parseInt8 = (v: string) => Number(v);

// jsonb metadata keys are customer data: never rename them.
const camelCase = () => new CamelCasePlugin({ maintainNestedObjectKeys: true });

/** The pg pool behind a PostgreSQL Db (for what Kysely cannot send: COPY … TO STDOUT). */
const pools = new WeakMap<Db, pg.Pool>();
export const pgPoolOf = (db: Db): pg.Pool | undefined => pools.get(db);

export interface OpenOptions {
  databaseUrl?: string;
  dataDir?: string;
  /** PGlite only: keep the database in memory (tests). */
  inMemory?: boolean;
  poolSize?: number;
}

export async function openDatabase(options: OpenOptions): Promise<DatabaseHandle> {
  if (options.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolSize ?? 20,
      // Each distinct statement parsed and planned once per connection (prepared-client.ts).
      Client: PreparingClient,
      types: {
        getTypeParser: ((oid: number, format?: string) =>
          oid === INT8_OID ? parseInt8 : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
      },
    });
    // An idle client dropped by the server (restart, admin shutdown) must not crash the process;
    // the pool replaces it on next checkout.
    pool.on('error', () => {});
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), plugins: [camelCase()] });
    pools.set(db, pool);
    return { db, kind: 'postgres', close: () => db.destroy() };
  }
  let dataPath: string | undefined;
  if (!options.inMemory) {
    dataPath = path.join(options.dataDir ?? './data', 'pglite');
    fs.mkdirSync(dataPath, { recursive: true });
  }
  const pglite = new PGlite(dataPath, {
    parsers: { [INT8_OID]: parseInt8, [NUMERIC_OID]: (v: string) => Number(v) },
  });
  await pglite.waitReady;
  const db = new Kysely<Database>({ dialect: new PGliteDialect({ pglite }), plugins: [camelCase()] });
  return {
    db,
    kind: 'pglite',
    close: async () => { await db.destroy(); if (!pglite.closed) await pglite.close(); },
  };
}

/**
 * Applies pending migrations (every domain's, from src/domains.ts: MIGRATIONS). Kysely's Postgres
 * adapter takes an advisory lock, so concurrent starts are safe.
 */
export async function migrate(db: Db, migrations: Record<string, Migration>): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'lethe_migrations',
    migrationLockTableName: 'lethe_migrations_lock',
    // One transaction for the whole run: a failed start leaves the schema as it was.
    transactionMode: 'per-run',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

export async function pendingMigrations(db: Db, migrations: Record<string, Migration>): Promise<number> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'lethe_migrations',
    migrationLockTableName: 'lethe_migrations_lock',
  });
  const all = await migrator.getMigrations();
  return all.filter((m) => !m.executedAt).length;
}
