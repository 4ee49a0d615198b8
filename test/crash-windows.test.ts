import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, baseEnv, freePort, runCli, startServer, type ServerProcess } from './helpers/process.ts';
import { acquireDataDirLock, liveHolder } from '../src/deployment/data-dir-lock.ts';
import { TEST_DB, createPgDatabase } from './helpers/runtime.ts';

/**
 * Crash windows with real processes (issue 11): a server is SIGKILLed at each step that matters
 * (test-only hook src/deployment/crash-points.ts: NODE_ENV=test + LETHE_TEST_CRASH_AT), then a
 * normal server starts on the same database; nothing is lost and nothing is done twice. The same
 * scenarios run on PostgreSQL and on the embedded database (PGlite on a data directory: the
 * restarted server opens the directory the killed one left; the data-directory lock after a
 * SIGKILL is tested below).
 */
const ADMIN = `lethe_op_${crypto.randomBytes(16).toString('hex')}`;
const MASTER = crypto.randomBytes(32).toString('base64');
const PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), crypto.randomBytes(1024)]);
const cleanup: Array<() => Promise<unknown> | unknown> = [];
afterAll(async () => { for (const c of cleanup.reverse()) await c(); });
const tmp = (name: string) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `lethe-cw-${name}-`));
  cleanup.push(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
};

function api(url: string) {
  return async (method: string, p: string, body?: unknown, raw?: Buffer) => {
    const r = await fetch(`${url}${p}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(raw ? { 'content-type': 'image/png' } : body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(raw ? { body: new Uint8Array(raw) } : body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await r.text();
    let json: any = null;
    try { json = JSON.parse(text); } catch { /* empty */ }
    return { status: r.status, body: json };
  };
}

/** A server that SIGKILLs itself at `point`; resolves once it is up (or at once, with waitReady false). */
async function crashingServer(env: Record<string, string>, point: string, options: { waitReady?: boolean } = {}) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'src/main.ts')], {
    cwd: ROOT, env: baseEnv({ ...env, PORT: String(port), HOST: '127.0.0.1', NODE_ENV: 'test', LETHE_TEST_CRASH_AT: point }),
  });
  let out = '';
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const died = new Promise<string | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));
  cleanup.push(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; options.waitReady !== false; i++) {
    try { if ((await fetch(`${url}/readyz`)).ok) break; } catch { /* not yet */ }
    if (i > 600) throw new Error(`crashing server did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, call: api(url), died, output: () => out };
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Direct reads and writes of the database while no server runs. PostgreSQL: a client. PGlite:
 * reads open a copy of the data directory (so the restarted server, not the test, is the first to
 * open a directory a SIGKILL left behind); writes (only between clean stops) open the directory
 * itself under the data-directory lock, which also proves no server holds it.
 */
interface Inspector { query(text: string, params?: unknown[]): Promise<{ rows: any[]; rowCount: number }>; close(): Promise<void> }

async function pgInspector(url: string): Promise<Inspector> {
  const q = new pg.Client({ connectionString: url });
  await q.connect();
  return {
    query: async (text, params) => { const r = await q.query(text, params); return { rows: r.rows, rowCount: r.rowCount ?? 0 }; },
    close: () => q.end(),
  };
}

function pgliteInspector(dataDir: string): Inspector {
  const open = async <T>(dir: string, fn: (db: PGlite) => Promise<T>) => {
    const db = new PGlite(dir);
    try { await db.waitReady; return await fn(db); } finally { await db.close(); }
  };
  return {
    async query(text, params) {
      const write = /^\s*(UPDATE|INSERT|DELETE)\b/i.test(text);
      if (write) {
        const lock = acquireDataDirLock(dataDir, 'cli');
        try {
          const r = await open(path.join(dataDir, 'pglite'), (db) => db.query(text, params));
          return { rows: r.rows as any[], rowCount: r.affectedRows ?? 0 };
        } finally { lock.release(); }
      }
      expect(liveHolder(dataDir), 'no process may hold the data directory while the test reads it').toBeNull();
      const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-cw-inspect-'));
      try {
        fs.cpSync(path.join(dataDir, 'pglite'), copy, { recursive: true });
        const r = await open(copy, (db) => db.query(text, params));
        return { rows: r.rows as any[], rowCount: r.rows.length };
      } finally { fs.rmSync(copy, { recursive: true, force: true }); }
    },
    close: async () => {},
  };
}

describe(`crash windows (${TEST_DB === 'postgres' ? 'PostgreSQL' : 'embedded PGlite'}, SIGKILL, real processes)`, () => {
  let env: Record<string, string>;
  let backupDir: string;
  let dataDir: string;
  let q: Inspector;
  beforeAll(async () => {
    backupDir = tmp('backups');
    dataDir = tmp('data');
    env = {
      LETHE_DATA_DIR: dataDir, LETHE_BACKUP_DIR: backupDir, LETHE_ADMIN_KEY: ADMIN, LETHE_MASTER_KEY: MASTER,
      LETHE_SCHEDULER: 'false', LETHE_DISPATCHER: 'false', LETHE_WEBHOOK_ALLOW_PRIVATE: 'true', LOG_LEVEL: 'warn',
    };
    if (TEST_DB === 'postgres') {
      const pgDb = await createPgDatabase();
      cleanup.push(() => pgDb.drop());
      env.DATABASE_URL = pgDb.url;
      q = await pgInspector(pgDb.url);
      cleanup.push(() => q.close());
    } else {
      q = pgliteInspector(dataDir);
    }
  });
  const journalLines = (id: string) => {
    try { return fs.readFileSync(path.join(backupDir, 'erasure-journal.jsonl'), 'utf8').split('\n').filter((l) => l.includes(id)).length; } catch { return 0; }
  };

  it('inside a DELETE before commit: nothing happened; the retried DELETE deletes once', async () => {
    const crash = await crashingServer(env, 'delete.before-commit');
    const c = await crash.call('POST', '/v1/customers', { email: `pre${crypto.randomBytes(3).toString('hex')}@example.org` });
    expect((await crash.call('PUT', `/v1/customers/${c.body.id}/profile-photo`, undefined, PNG)).status).toBe(204);
    await crash.call('DELETE', `/v1/customers/${c.body.id}`).catch(() => null);
    expect(await crash.died).toBe('SIGKILL');

    let s = await startServer(env);
    try {
      const call = api(s.url);
      expect((await call('GET', `/v1/customers/${c.body.id}`)).status).toBe(200);
      expect((await call('GET', `/v1/customers/${c.body.id}/profile-photo`)).status).toBe(200);
      expect((await call('GET', `/v1/deletions/${c.body.id}`)).status).toBe(404);
    } finally { await s.stop(); }
    expect((await q.query('SELECT 1 FROM erasure_journal WHERE customer_id = $1', [c.body.id])).rowCount).toBe(0);
    expect(journalLines(c.body.id)).toBe(0);
    s = await startServer(env);
    try {
      const call = api(s.url);
      expect((await call('DELETE', `/v1/customers/${c.body.id}`)).status).toBe(204);
      expect((await call('GET', `/v1/customers/${c.body.id}/profile-photo`)).status).toBe(404);
    } finally { await s.stop(); }
    expect((await q.query('SELECT 1 FROM stored_files WHERE key LIKE $1', ['photos/%'])).rowCount).toBe(0);
    expect((await q.query(`SELECT 1 FROM audit_events WHERE type = 'customer.deleted' AND subject_id = $1`, [c.body.id])).rowCount).toBe(1);
    expect(journalLines(c.body.id)).toBe(1);
  }, 300_000);

  it('after commit, before the journal-file append: the next start appends it once; restoring an older backup does not resurrect', async () => {
    const s0 = await startServer(env);
    const call0 = api(s0.url);
    const c = await call0('POST', '/v1/customers', { email: `post${crypto.randomBytes(3).toString('hex')}@example.org` });
    const backup = await call0('POST', '/v1/backups/database');
    expect(backup.status).toBe(201);
    await s0.stop();

    const crash = await crashingServer(env, 'delete.after-commit');
    await crash.call('DELETE', `/v1/customers/${c.body.id}`).catch(() => null);
    expect(await crash.died).toBe('SIGKILL');
    // Committed, but the shared file does not have it yet: pending in the table.
    const pending = await q.query('SELECT file_appended_at FROM erasure_journal WHERE customer_id = $1', [c.body.id]);
    expect(pending.rows).toEqual([{ file_appended_at: null }]);
    expect(journalLines(c.body.id)).toBe(0);

    const s = await startServer(env);
    expect(journalLines(c.body.id)).toBe(1);
    expect((await api(s.url)('GET', `/v1/customers/${c.body.id}`)).status).toBe(404);
    await s.stop();

    // `lethe backup restore` as a real subprocess, servers stopped: the older backup still had the customer.
    const restored = await runCli(['backup', 'restore', backup.body.path], env);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/replayed 1 deletion/);
    const s2 = await startServer(env);
    try {
      const call = api(s2.url);
      expect((await call('GET', `/v1/customers/${c.body.id}`)).status).toBe(404);
      expect((await call('GET', `/v1/deletions/${c.body.id}`)).status).toBe(200);
      expect((await call('GET', '/v1/audit-events/verify')).body.valid).toBe(true);
      expect(journalLines(c.body.id)).toBe(1);
    } finally { await s2.stop(); }
  }, 300_000);

  it('after the journal-file append, before its commit: the entry stays pending; the next start marks it without a second line', async () => {
    const s0 = await startServer(env);
    const c = await api(s0.url)('POST', '/v1/customers', { email: `app${crypto.randomBytes(3).toString('hex')}@example.org` });
    await s0.stop();
    const crash = await crashingServer(env, 'journal.after-append');
    await crash.call('DELETE', `/v1/customers/${c.body.id}`).catch(() => null);
    expect(await crash.died).toBe('SIGKILL');
    // In the file (fsync'd), still pending in the table: the commit was lost.
    expect(journalLines(c.body.id)).toBe(1);
    expect((await q.query('SELECT file_appended_at FROM erasure_journal WHERE customer_id = $1', [c.body.id])).rows).toEqual([{ file_appended_at: null }]);
    const s = await startServer(env);
    try {
      expect((await api(s.url)('GET', `/v1/customers/${c.body.id}`)).status).toBe(404);
    } finally { await s.stop(); }
    expect(journalLines(c.body.id)).toBe(1);
    expect((await q.query('SELECT 1 FROM erasure_journal WHERE customer_id = $1 AND file_appended_at IS NOT NULL', [c.body.id])).rowCount).toBe(1);
  }, 300_000);

  it('during the grace sweep and during the daily notification pass: each case becomes required and is notified once', async () => {
    const s0 = await startServer(env);
    const call0 = api(s0.url);
    expect((await call0('PATCH', '/v1/settings', { gracePeriodDays: 3 })).status).toBe(200);
    const app = await call0('POST', '/v1/applications', { name: 'partner', webhookUrl: 'http://127.0.0.1:9/hook' });
    expect(app.status).toBe(201);
    const customers: string[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await call0('POST', '/v1/customers', { email: `g${i}${crypto.randomBytes(3).toString('hex')}@example.org` });
      const lic = await call0('POST', `/v1/customers/${c.body.id}/licenses`, { applicationId: app.body.id });
      expect(lic.status).toBe(201);
      expect((await call0('POST', `/v1/licenses/${lic.body.id}/cancel`)).status).toBe(200);
      customers.push(c.body.id);
    }
    await s0.stop();
    const inList = customers.map((id) => `'${id}'`).join(',');
    expect((await q.query(`UPDATE deletion_cases SET grace_ends_at = now() - interval '1 minute' WHERE customer_id IN (${inList})`)).rowCount).toBe(5);

    const crash = await crashingServer(env, 'grace-sweep');
    await crash.call('POST', '/v1/jobs/grace-periods/run').catch(() => null);
    expect(await crash.died).toBe('SIGKILL');
    expect((await q.query(`SELECT 1 FROM deletion_cases WHERE status = 'grace' AND customer_id IN (${inList})`)).rowCount).toBe(5);

    const s = await startServer(env);
    expect((await api(s.url)('POST', '/v1/jobs/grace-periods/run')).body.result.required).toBe(5);
    await s.stop();
    const counts = async () => (await q.query(
      `SELECT count(*)::int AS n FROM webhook_outbox o JOIN deletion_cases c ON c.id = o.case_id WHERE c.customer_id IN (${inList})`)).rows[0]!.n;
    expect(await counts()).toBe(5);
    expect((await q.query(`SELECT 1 FROM audit_events WHERE type = 'deletion_case.required' AND subject_id IN
      (SELECT id FROM deletion_cases WHERE customer_id IN (${inList}))`)).rowCount).toBe(5);

    // The next day's pass: SIGKILL after a batch committed; the restarted pass notifies nobody twice.
    expect((await q.query(`UPDATE deletion_cases SET last_notified_day = '2000-01-01' WHERE customer_id IN (${inList})`)).rowCount).toBe(5);
    const crash2 = await crashingServer(env, 'notification-pass');
    await crash2.call('POST', '/v1/jobs/deletion-notifications/run').catch(() => null);
    expect(await crash2.died).toBe('SIGKILL');
    expect(await counts()).toBe(10);
    const s2 = await startServer(env);
    expect((await api(s2.url)('POST', '/v1/jobs/deletion-notifications/run')).body.result.enqueued).toBe(0);
    await s2.stop();
    expect(await counts()).toBe(10);
  }, 400_000);

  it('during a restore: nothing of the restore is committed; the restore run again completes', async () => {
    const s0 = await startServer(env);
    const call0 = api(s0.url);
    const c = await call0('POST', '/v1/customers', { email: `r${crypto.randomBytes(3).toString('hex')}@example.org` });
    const backup = await call0('POST', '/v1/backups/database');
    const later = await call0('POST', '/v1/customers', { email: `r2${crypto.randomBytes(3).toString('hex')}@example.org` });
    await s0.stop();
    const killed = await runCli(['backup', 'restore', backup.body.path], { ...env, NODE_ENV: 'test', LETHE_TEST_CRASH_AT: 'restore' });
    // SIGKILLed mid-transaction (the bin/lethe.mjs shim reports a killed child as exit 1, with no output).
    expect(killed.code).toBe(1);
    expect(killed.stdout + killed.stderr).not.toMatch(/restored|refused/);
    // Rolled back: the customer created after the backup is still there.
    expect((await q.query('SELECT 1 FROM customers WHERE id = $1', [later.body.id])).rowCount).toBe(1);
    expect((await q.query(`SELECT 1 FROM audit_events WHERE type = 'backup.restored' AND subject_id = $1`, [backup.body.id])).rowCount).toBe(0);
    const again = await runCli(['backup', 'restore', backup.body.path], env);
    expect(again.code, again.stderr).toBe(0);
    expect((await q.query('SELECT 1 FROM customers WHERE id = $1', [later.body.id])).rowCount).toBe(0);
    expect((await q.query('SELECT 1 FROM customers WHERE id = $1', [c.body.id])).rowCount).toBe(1);
    expect((await q.query(`SELECT 1 FROM audit_events WHERE type = 'backup.restored' AND subject_id = $1`, [backup.body.id])).rowCount).toBe(1);
    const s = await startServer(env);
    try { expect((await api(s.url)('GET', '/v1/audit-events/verify')).body.valid).toBe(true); } finally { await s.stop(); }
  }, 300_000);

  it('during a scheduled backup: the stale claim is taken over, one backup for the slot, the partial file never listed', async () => {
    const s0 = await startServer(env);
    const call0 = api(s0.url);
    expect((await call0('PATCH', '/v1/settings', { databaseBackupEnabled: true, databaseBackupTime: '00:00', notificationTimeZone: 'UTC' })).status).toBe(200);
    const listedBefore = (await call0('GET', '/v1/backups/database')).body.data.length as number;
    await s0.stop();
    const files = (suffix: string) => fs.readdirSync(backupDir).filter((n) => n.endsWith(suffix));
    const complete = files('.lbk').length;
    const created = async () => (await q.query(`SELECT count(*)::int AS n FROM audit_events WHERE type = 'backup.created'`)).rows[0]!.n as number;
    const createdBefore = await created();
    // The scheduler checks right after start; "00:00" UTC has passed, so today's slot is due.
    const sched = { ...env, LETHE_SCHEDULER: 'true', LOG_LEVEL: 'debug' };

    const crash = await crashingServer({ ...sched, LETHE_INSTANCE_ID: 'killed' }, 'scheduled-backup', { waitReady: false });
    expect(await crash.died).toBe('SIGKILL');
    const claim = await q.query(`SELECT slot, instance_id, finished_at FROM job_runs WHERE job = 'database-backup'`);
    expect(claim.rows).toHaveLength(1);
    expect(claim.rows[0]).toMatchObject({ instance_id: 'killed', finished_at: null });
    const slot = claim.rows[0].slot as string;
    const partial = files('.lbk.tmp');
    expect(partial).toHaveLength(1); // half written, never renamed
    expect(files('.lbk')).toHaveLength(complete);

    // While the claim is fresh (the killed instance might still be working), nobody takes it over.
    const early = await startServer({ ...sched, LETHE_INSTANCE_ID: 'early' });
    try {
      await waitFor('the early instance to find the slot claimed', () => early.output().includes('slot already claimed'));
      const listed = (await api(early.url)('GET', '/v1/backups/database')).body.data as Array<{ file: string }>;
      expect(listed).toHaveLength(listedBefore);
      expect(listed.map((b) => b.file)).not.toContain(partial[0]);
    } finally { await early.stop(); }
    expect((await q.query(`SELECT instance_id FROM job_runs WHERE job = 'database-backup'`)).rows).toEqual([{ instance_id: 'killed' }]);

    // An hour later (claim and partial file aged by two hours): PostgreSQL, two instances start at
    // once and exactly one takes the slot over; PGlite, the restarted server does.
    expect((await q.query(`UPDATE job_runs SET started_at = started_at - interval '2 hours' WHERE job = 'database-backup' AND slot = $1`, [slot])).rowCount).toBe(1);
    const aged = (Date.now() - 2 * 3_600_000) / 1000;
    fs.utimesSync(path.join(backupDir, partial[0]!), aged, aged);
    const names = TEST_DB === 'postgres' ? ['taker-1', 'taker-2'] : ['taker-1'];
    const takers = await Promise.all(names.map((n) => startServer({ ...sched, LETHE_INSTANCE_ID: n })));
    try {
      const decided = (s: ServerProcess) => s.output().includes('scheduled database backup taken') || s.output().includes('slot already claimed');
      await waitFor('every instance to decide the slot', () => takers.every(decided));
      expect(takers.filter((s) => s.output().includes('scheduled database backup taken'))).toHaveLength(1);
      const listed = (await api(takers[0]!.url)('GET', '/v1/backups/database')).body.data as Array<{ file: string }>;
      expect(listed).toHaveLength(listedBefore + 1);
    } finally { for (const s of takers) await s.stop(); }
    const run = await q.query(`SELECT instance_id, finished_at, outcome FROM job_runs WHERE job = 'database-backup'`);
    expect(run.rows).toHaveLength(1);
    expect(names).toContain(run.rows[0].instance_id);
    expect(run.rows[0].outcome).toBe('succeeded');
    expect(run.rows[0].finished_at).not.toBeNull();
    expect(files('.lbk')).toHaveLength(complete + 1);
    expect(files('.lbk.tmp')).toEqual([]); // the stale partial file was removed by the prune
    expect(await created()).toBe(createdBefore + 1);

    // Later the same day: the slot is done; a restarted instance takes no second backup.
    const again = await startServer({ ...sched, LETHE_INSTANCE_ID: 'again' });
    try {
      await waitFor('the restarted instance to find the slot done', () => again.output().includes('slot already claimed'));
    } finally { await again.stop(); }
    expect(files('.lbk')).toHaveLength(complete + 1);
    expect(await created()).toBe(createdBefore + 1);
  }, 600_000);
});

describe.skipIf(TEST_DB !== 'pglite')('the embedded data-directory lock (real processes)', () => {
  it('does not go stale when its holder is SIGKILLed: the next server starts', async () => {
    const env = { LETHE_DATA_DIR: tmp('emb'), LETHE_ADMIN_KEY: ADMIN, LETHE_SCHEDULER: 'false', LETHE_DISPATCHER: 'false' };
    const crash = await crashingServer(env, 'delete.before-commit');
    const c = await crash.call('POST', '/v1/customers', { email: 'lock@example.org' });
    expect(fs.existsSync(path.join(env.LETHE_DATA_DIR, 'lethe.lock'))).toBe(true);
    await crash.call('DELETE', `/v1/customers/${c.body.id}`).catch(() => null);
    expect(await crash.died).toBe('SIGKILL');
    const s: ServerProcess = await startServer(env);
    try {
      expect((await api(s.url)('GET', `/v1/customers/${c.body.id}`)).status).toBe(200);
    } finally { await s.stop(); }
    expect(fs.existsSync(path.join(env.LETHE_DATA_DIR, 'lethe.lock'))).toBe(false);
  }, 180_000);
});
