// A database written by a landed release, for migration tests: "users upgrade".
//
//   const fx = await loadReleaseFixture('release-1');   // a copy: database, data dir, backup dir
//   const env = await createTestEnv({ fixture: fx });    // this checkout's server on it (migrates)
//   ... fx.manifest.customers.living, fx.manifest.operatorKey ...
//   await env.close();                                    // also drops the copy
//
// The fixture was made by scripts/make-release-fixture.ts on the release's own commit
// (manifest.commit): customers living, in grace and deleted (with photos, archives, a
// confirmation), an operator and an application key, the audit chain, the erasure journal and
// one database backup in the backup directory. It is loaded into a fresh PostgreSQL database
// or a fresh PGlite directory, so each test changes only its own copy.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { createPgDatabase, TEST_DB } from './runtime.ts';

export interface ReleaseManifest {
  release: string;
  commit: string;
  masterKey: string;
  operatorKey: string;
  applicationKey: string;
  applications: { a: string; b: string };
  webhookSecrets: { a: string; b: string };
  customers: { living: string; inGrace: string; deleted: string; deletedUnconfirmed: string };
  living: { email: string; subscriptionId: string; invoiceId: string; transactionId: string; licenseIds: string[] };
  deletedEmails: string[];
  databaseBackup: string;
  auditEvents: number;
  photoSha256: string;
}

export interface ReleaseFixture {
  manifest: ReleaseManifest;
  /** Environment for loadConfig: data dir, backup dir, master key and (PostgreSQL) DATABASE_URL. */
  env: Record<string, string>;
  dataDir: string;
  backupDir: string;
  databaseUrl: string | undefined;
  /** Drops the database copy and removes the directories. */
  drop(): Promise<void>;
}

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

/** The dump as SQL both engines run: psql meta-commands (\restrict …) removed. */
export function releaseSql(release: string): string {
  return fs.readFileSync(path.join(FIXTURES, release, 'database.sql'), 'utf8')
    .split('\n').filter((line) => !line.startsWith('\\')).join('\n');
}

export async function loadReleaseFixture(release = 'release-1', kind: 'pglite' | 'postgres' = TEST_DB): Promise<ReleaseFixture> {
  const src = path.join(FIXTURES, release);
  const manifest = JSON.parse(fs.readFileSync(path.join(src, 'manifest.json'), 'utf8')) as ReleaseManifest;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `lethe-${release}-`));
  const dataDir = path.join(root, 'data');
  const backupDir = path.join(root, 'backups');
  fs.cpSync(path.join(src, 'data'), dataDir, { recursive: true });
  fs.cpSync(path.join(src, 'backups'), backupDir, { recursive: true });
  const sql = releaseSql(release);
  let pgDb: Awaited<ReturnType<typeof createPgDatabase>> | null = null;
  if (kind === 'postgres') {
    pgDb = await createPgDatabase();
    const c = new pg.Client({ connectionString: pgDb.url });
    await c.connect();
    try { await c.query(sql); } finally { await c.end(); }
  } else {
    const lite = new PGlite(path.join(dataDir, 'pglite'));
    try { await lite.exec(sql); } finally { await lite.close(); }
  }
  const env: Record<string, string> = {
    LETHE_DATA_DIR: dataDir,
    LETHE_BACKUP_DIR: backupDir,
    LETHE_MASTER_KEY: manifest.masterKey,
    ...(pgDb ? { DATABASE_URL: pgDb.url } : {}),
  };
  return {
    manifest, env, dataDir, backupDir, databaseUrl: pgDb?.url,
    drop: async () => {
      await pgDb?.drop();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
