import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, baseEnv, freePort, runCli, startServer, type ServerProcess } from './helpers/process.ts';
import { TEST_DB, createPgDatabase } from './helpers/runtime.ts';
import { describeNeeding, toolPath } from './helpers/tools.ts';

/**
 * Issue 11, done-when: real server processes. PostgreSQL: two instances with their own data
 * directories share one database, the master key and the backup location; files live in the
 * database; a pg_dump restored with pg_restore --clean never brings a deleted customer back.
 * Embedded: backups while serving, a restore refused while serving, the data-directory lock.
 */
const PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), crypto.randomBytes(2048)]);
const cleanup: Array<() => Promise<unknown> | unknown> = [];
afterAll(async () => { for (const c of cleanup.reverse()) await c(); });

const tmp = (name: string) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `lethe-dep-${name}-`));
  cleanup.push(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
};
const ADMIN = `lethe_op_${crypto.randomBytes(16).toString('hex')}`;
const MASTER = crypto.randomBytes(32).toString('base64');

function api(s: ServerProcess) {
  return async (method: string, url: string, body?: unknown, raw?: { type: string; data: Buffer }) => {
    const r = await fetch(`${s.url}${url}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(raw ? { 'content-type': raw.type } : body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(raw ? { body: new Uint8Array(raw.data) } : body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const buf = Buffer.from(await r.arrayBuffer());
    let json: any = null;
    try { json = JSON.parse(buf.toString()); } catch { /* binary */ }
    return { status: r.status, body: json, raw: buf };
  };
}

/** Every file under a directory holding the needle's bytes. */
function filesHolding(dir: string, needle: Buffer): string[] {
  const out: string[] = [];
  for (const f of fs.readdirSync(dir, { recursive: true }).map(String)) {
    const p = path.join(dir, f);
    if (fs.statSync(p).isFile() && fs.readFileSync(p).includes(needle)) out.push(p);
  }
  return out;
}

/** Starts a server expected to refuse; returns its exit code and output. */
function refusedStart(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'src/main.ts')], { cwd: ROOT, env: baseEnv({ ...env, PORT: '0', HOST: '127.0.0.1' }) });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

const person = () => {
  const tag = crypto.randomBytes(4).toString('hex');
  return {
    firstName: `Zelda${tag}`, lastName: `Quist${tag}`, email: `zq${tag}@example.org`, tin: `DE${parseInt(tag, 16)}`,
    lastLoginSuccessIp: `203.0.113.${parseInt(tag.slice(0, 2), 16) % 250}`,
  };
};

function expectNoPersonalData(logs: string, people: Array<ReturnType<typeof person>>) {
  for (const p of people) {
    for (const v of [p.firstName, p.lastName, p.email, p.tin, p.lastLoginSuccessIp]) expect(logs, `log holds ${v}`).not.toContain(v);
  }
}

const pgSuite = TEST_DB === 'postgres' ? describeNeeding('pg_dump', 'pg_restore') : describe.skip;

pgSuite('N instances on one PostgreSQL (real processes)', () => {
  it('a photo written through A is served by B, deleted through B leaves no bytes on either disk; a pg_dump restored with pg_restore --clean still answers 404', async () => {
    const pgDb = await createPgDatabase();
    cleanup.push(() => pgDb.drop());
    const backupDir = tmp('shared-backups');
    const keyringDir = tmp('shared-keyring');
    const env = (dataDir: string, extra: Record<string, string> = {}) => ({
      DATABASE_URL: pgDb.url, LETHE_DATA_DIR: dataDir, LETHE_BACKUP_DIR: backupDir, LETHE_KEYRING_DIR: keyringDir, LETHE_ADMIN_KEY: ADMIN,
      LETHE_MASTER_KEY: MASTER, LETHE_SCHEDULER: 'false', LETHE_DISPATCHER: 'false', ...extra,
    });
    const dirA = tmp('a');
    const dirB = tmp('b');
    const a = await startServer(env(dirA, { LOG_LEVEL: 'info' }));
    cleanup.push(() => a.stop());
    const b = await startServer(env(dirB, { LOG_LEVEL: 'debug' }));
    cleanup.push(() => b.stop());
    const callA = api(a);
    const callB = api(b);

    const p = person();
    const c = await callA('POST', '/v1/customers', p);
    expect(c.status).toBe(201);
    // An application holding a license: the deletion opens a case it must confirm (no grace period).
    expect((await callA('PATCH', '/v1/settings', { gracePeriodDays: 0 })).status).toBe(200);
    const application = await callA('POST', '/v1/applications', { name: 'partner' });
    expect((await callA('POST', `/v1/customers/${c.body.id}/licenses`, { applicationId: application.body.id })).status).toBe(201);
    const appKey = await callA('POST', '/v1/api-keys', { kind: 'application', applicationIds: [application.body.id] });
    expect(appKey.status).toBe(201);
    expect((await callA('PUT', `/v1/customers/${c.body.id}/profile-photo`, undefined, { type: 'image/png', data: PNG })).status).toBe(204);
    const served = await callB('GET', `/v1/customers/${c.body.id}/profile-photo`);
    expect(served.status).toBe(200);
    expect(served.raw.equals(PNG)).toBe(true);
    expect(filesHolding(dirA, PNG)).toEqual([]);

    // A dump taken before the deletion.
    const dump = path.join(tmp('dump'), 'before.dump');
    const d = spawnSync(toolPath('pg_dump')!, ['-Fc', '-f', dump, pgDb.url]);
    expect(d.status, d.stderr.toString()).toBe(0);

    expect((await callB('DELETE', `/v1/customers/${c.body.id}`)).status).toBe(204);
    expect((await callA('GET', `/v1/customers/${c.body.id}`)).status).toBe(404);
    expect((await callA('GET', `/v1/customers/${c.body.id}/profile-photo`)).status).toBe(404);
    for (const dir of [dirA, dirB]) expect(filesHolding(dir, PNG)).toEqual([]);
    const receipt = await callA('GET', `/v1/deletions/${c.body.id}`);
    expect(receipt.status).toBe(200);
    const confirmed = await fetch(`${a.url}/v1/data-deletions/confirmations`, {
      method: 'POST', headers: { authorization: `Bearer ${appKey.body.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ subscriptionId: c.body.id }),
    });
    expect(confirmed.status).toBe(200);
    const confirmation = await confirmed.json() as { id: string };
    // The journal entry reached the shared file (one writer).
    expect(fs.readFileSync(path.join(backupDir, 'erasure-journal.jsonl'), 'utf8')).toContain(c.body.id);

    // A different master key, another backup location or another keyring refuses to start (exit 3).
    const wrongKey = await refusedStart(env(tmp('c'), { LETHE_MASTER_KEY: crypto.randomBytes(32).toString('base64') }));
    expect(wrongKey.code).toBe(3);
    expect(wrongKey.out).toContain('LETHE_MASTER_KEY');
    const wrongDir = await refusedStart({ ...env(tmp('d')), LETHE_BACKUP_DIR: tmp('elsewhere') });
    expect(wrongDir.code).toBe(3);
    expect(wrongDir.out).toContain('LETHE_BACKUP_DIR');
    const wrongKeyring = await refusedStart({ ...env(tmp('e')), LETHE_KEYRING_DIR: tmp('other-keyring') });
    expect(wrongKeyring.code).toBe(3);
    expect(wrongKeyring.out).toContain('LETHE_KEYRING_DIR');

    // A restore refuses while the servers serve; then with them stopped, pg_restore --clean.
    const refused = await runCli(['backup', 'restore', path.join(backupDir, 'none.lbk')], env(tmp('cli')));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/Stop every server/);
    const logs = a.output() + b.output();
    await a.stop();
    await b.stop();
    const r = spawnSync(toolPath('pg_restore')!, ['--clean', '--if-exists', '--no-owner', '-d', pgDb.url, dump]);
    expect(r.status, r.stderr.toString()).toBe(0);

    const dirC = tmp('c2');
    const c3 = await startServer(env(dirC));
    cleanup.push(() => c3.stop());
    const callC = api(c3);
    expect((await callC('GET', `/v1/customers/${c.body.id}`)).status).toBe(404);
    expect((await callC('GET', `/v1/customers/${c.body.id}/profile-photo`)).status).toBe(404);
    const again = await callC('GET', `/v1/deletions/${c.body.id}`);
    expect(again.status).toBe(200);
    expect(again.body.customerId).toBe(c.body.id);
    expect(again.body.deletedAt).toBe(receipt.body.deletedAt);
    // The application's confirmation, made after the dump, is back (replayed from the shared journal).
    const q = new pg.Client({ connectionString: pgDb.url });
    await q.connect();
    try {
      const conf = await q.query('SELECT id FROM deletion_confirmations WHERE customer_id = $1', [c.body.id]);
      expect(conf.rows).toEqual([{ id: confirmation.id }]);
      const cs = await q.query('SELECT status FROM deletion_cases WHERE customer_id = $1', [c.body.id]);
      expect(cs.rows).toEqual([{ status: 'confirmed' }]);
    } finally { await q.end(); }
    // The chain itself is intact, but a restore by other means than Lethe's is not a recorded fork:
    // verify reports it against the checkpoints in the shared backup location (docs/security.md).
    const verify = await callC('GET', '/v1/audit-events/verify');
    const kinds = (verify.body.problems as Array<{ kind: string }>).map((x) => x.kind);
    expect(verify.body.valid).toBe(false);
    expect(kinds.length).toBeGreaterThan(0);
    expect(kinds.filter((k) => k !== 'truncated' && k !== 'rewritten')).toEqual([]);
    expect(verify.body.restores).toEqual([]);
    for (const dir of [dirA, dirB, dirC]) expect(filesHolding(dir, PNG)).toEqual([]);
    // A server still serves: the operator's record of the restore is refused.
    expect((await runCli(['audit', 'record-restore', '--label', 'pg-restore-test'], env(dirC))).code).toBe(1);
    await c3.stop();
    // The operator documents the restore (issue 11: the restored database is a recorded fork, not tampering).
    const recorded = await runCli(['audit', 'record-restore', '--label', 'pg-restore-test'], env(dirC));
    expect(recorded.code, recorded.stderr).toBe(0);
    const c4 = await startServer(env(dirC));
    cleanup.push(() => c4.stop());
    const documented = await api(c4)('GET', '/v1/audit-events/verify');
    expect(documented.body.problems).toEqual([]);
    expect(documented.body.valid).toBe(true);
    expect(documented.body.restores.map((x: { backupId: string }) => x.backupId)).toEqual(['external:pg-restore-test']);
    expect(documented.body.restores[0].eventsLost).toBeGreaterThan(0);
    await c4.stop();
    // Logs at info and at debug hold none of the customer's personal data.
    expectNoPersonalData(logs + c3.output() + c4.output(), [p]);
  }, 300_000);
});

describe.skipIf(TEST_DB !== 'pglite')('the embedded database while serving (real processes)', () => {
  it('backup while serving restores correctly; restore while serving is refused and changes nothing; a second server is refused', async () => {
    const dataDir = tmp('emb');
    const env = { LETHE_DATA_DIR: dataDir, LETHE_ADMIN_KEY: ADMIN, LETHE_SCHEDULER: 'false', LETHE_DISPATCHER: 'false', LOG_LEVEL: 'debug' };
    let s = await startServer(env);
    cleanup.push(() => s.stop());
    let call = api(s);
    const p1 = person();
    const kept = await call('POST', '/v1/customers', p1);
    expect(kept.status).toBe(201);

    const second = await refusedStart(env);
    expect(second.code).toBe(3);
    expect(second.out).toMatch(/in use by another Lethe process/);

    const backup = await runCli(['backup', 'create'], env);
    expect(backup.code, backup.stderr).toBe(0);
    const file = backup.stdout.trim();
    expect(fs.existsSync(file)).toBe(true);
    expect(backup.stderr).toContain('taken by the running server');
    const listed = await runCli(['backup', 'list'], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(path.basename(file));
    // `lethe keys create` while serving: the server issues it; the key works at once.
    const key = await runCli(['keys', 'create', '--operator'], env);
    expect(key.code, key.stderr).toBe(0);
    const issued = key.stdout.trim();
    expect(issued).toMatch(/^lethe_op_/);
    expect((await fetch(`${s.url}/v1/customers/${kept.body.id}`, { headers: { authorization: `Bearer ${issued}` } })).status).toBe(200);
    // The route only the local CLI may call is not there for an API key.
    expect((await call('POST', '/v1/backups/archives/00000000-0000-0000-0000-000000000001/open')).status).toBe(404);

    const p2 = person();
    const later = await call('POST', '/v1/customers', p2);
    expect(later.status).toBe(201);
    const refused = await runCli(['backup', 'restore', file], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/Stop every server/);
    expect((await call('GET', `/v1/customers/${later.body.id}`)).status).toBe(200);

    const audit = await call('GET', '/v1/audit-events?limit=500');
    expect(audit.body.data.some((e: { type: string }) => e.type === 'backup.created')).toBe(true);
    const logs = s.output();
    await s.stop();

    const restored = await runCli(['backup', 'restore', file], env);
    expect(restored.code, restored.stderr).toBe(0);
    s = await startServer(env);
    call = api(s);
    expect((await call('GET', `/v1/customers/${kept.body.id}`)).status).toBe(200);
    expect((await call('GET', `/v1/customers/${later.body.id}`)).status).toBe(404);
    expect((await call('GET', '/v1/audit-events/verify')).body.valid).toBe(true);
    await s.stop();
    expectNoPersonalData(logs + s.output(), [p1, p2]);
  }, 300_000);
});

void freePort;
