import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import pino from 'pino';
import { loadConfig } from '../src/config.ts';
import { migrate, openDatabase, pendingMigrations } from '../src/db/database.ts';
import { MIGRATIONS } from '../src/domains.ts';
import { startRuntime } from '../src/runtime.ts';
import { createPgDatabase, TEST_DB } from './helpers/runtime.ts';
import { runCli } from './helpers/process.ts';

const ALL = Object.keys(MIGRATIONS);

async function appliedNames(db: Awaited<ReturnType<typeof openDatabase>>['db']) {
  const r = await sql<{ name: string }>`SELECT name FROM lethe_migrations ORDER BY name`.execute(db);
  return r.rows.map((x) => x.name);
}

/** A fresh, unmigrated database of this file's kind. */
async function freshDb() {
  const pgDb = TEST_DB === 'postgres' ? await createPgDatabase() : null;
  const handle = await openDatabase(pgDb ? { databaseUrl: pgDb.url } : { inMemory: true });
  return { db: handle.db, close: async () => { await handle.close(); await pgDb?.drop(); } };
}

describe('migrations', () => {
  it('apply once; a second run applies nothing and nothing is pending', async () => {
    const handle = await freshDb();
    try {
      expect(await pendingMigrations(handle.db, MIGRATIONS)).toBe(ALL.length);
      expect(await migrate(handle.db, MIGRATIONS)).toEqual(ALL);
      expect(await migrate(handle.db, MIGRATIONS)).toEqual([]);
      expect(await pendingMigrations(handle.db, MIGRATIONS)).toBe(0);
      expect(await appliedNames(handle.db)).toEqual([...ALL].sort());
    } finally {
      await handle.close();
    }
  });

  it.runIf(TEST_DB === 'postgres')('two instances migrating one PostgreSQL at once both succeed, each migration applied once', async () => {
    const pgDb = await createPgDatabase();
    const a = await openDatabase({ databaseUrl: pgDb.url, poolSize: 2 });
    const b = await openDatabase({ databaseUrl: pgDb.url, poolSize: 2 });
    try {
      const [ra, rb] = await Promise.all([migrate(a.db, MIGRATIONS), migrate(b.db, MIGRATIONS)]);
      // Between them every migration ran exactly once; whoever lost the lock found nothing to do.
      expect([...ra, ...rb].sort()).toEqual([...ALL].sort());
      expect(await appliedNames(a.db)).toEqual([...ALL].sort());
      expect(await pendingMigrations(b.db, MIGRATIONS)).toBe(0);
    } finally {
      await a.close();
      await b.close();
      await pgDb.drop();
    }
  });

  it.runIf(TEST_DB === 'postgres')('two full instance starts at once: both ready, one bootstrap key', async () => {
    const pgDb = await createPgDatabase();
    const dirs = [0, 1].map(() => fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-mig-')));
    const masterKey = Buffer.alloc(32, 7).toString('base64');
    // Instances share the backup location and the keyring (start-up guards check both), like the database and the master key.
    const backupDir = path.join(dirs[0]!, 'shared-backups');
    const keyringDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-mig-keyring-'));
    dirs.push(keyringDir);
    try {
      const runtimes = await Promise.all(dirs.slice(0, 2).map((dir) => startRuntime(
        loadConfig({ LETHE_DATA_DIR: dir, DATABASE_URL: pgDb.url, LETHE_MASTER_KEY: masterKey, LETHE_BACKUP_DIR: backupDir, LOG_LEVEL: 'silent', LETHE_KEYRING_DIR: keyringDir }),
        { log: pino({ level: 'silent' }), withDefaultMetrics: false },
      )));
      try {
        // Without LETHE_ADMIN_KEY each start would print a generated key: exactly one of them did.
        expect(runtimes.filter((r) => r.firstKey !== null)).toHaveLength(1);
        const keys = await runtimes[0]!.ctx.db.selectFrom('apiKeys').select('id').execute();
        expect(keys).toHaveLength(1);
      } finally {
        await Promise.all(runtimes.map((r) => r.close()));
      }
    } finally {
      await pgDb.drop();
      for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it.runIf(TEST_DB === 'postgres')('two `lethe migrate` processes at once both exit 0', async () => {
    const pgDb = await createPgDatabase();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-mig-'));
    try {
      const env = { LETHE_DATA_DIR: dir, DATABASE_URL: pgDb.url };
      const results = await Promise.all([runCli(['migrate'], env), runCli(['migrate'], env)]);
      for (const r of results) expect(r.code, r.stderr).toBe(0);
      const handle = await openDatabase({ databaseUrl: pgDb.url });
      try {
        expect(await pendingMigrations(handle.db, MIGRATIONS)).toBe(0);
      } finally {
        await handle.close();
      }
    } finally {
      await pgDb.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('a failing migration leaves no half-applied schema behind and is reported', async () => {
    const handle = await freshDb();
    try {
      await migrate(handle.db, MIGRATIONS);
      const before = await appliedNames(handle.db);
      // A migration that fails half way: its first statement must not survive.
      const broken = { up: async (db: typeof handle.db) => {
        await sql`CREATE TABLE half_done (id int)`.execute(db);
        await sql`SELECT * FROM no_such_table`.execute(db);
      } };
      const { Migrator } = await import('kysely/migration');
      const migrator = new Migrator({
        db: handle.db, provider: { getMigrations: async () => ({ ...MIGRATIONS, '9999-broken': broken as never }) },
        migrationTableName: 'lethe_migrations', migrationLockTableName: 'lethe_migrations_lock', transactionMode: 'per-run',
      } as never);
      const { error } = await migrator.migrateToLatest();
      expect(error).toBeDefined();
      const exists = await sql<{ n: number }>`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'half_done'`.execute(handle.db);
      expect(exists.rows[0]!.n).toBe(0);
      expect(await appliedNames(handle.db)).toEqual(before);
    } finally {
      await handle.close();
    }
  });
});
