import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, createTestEnv, TEST_DB, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createApplication, createAppKey, createCustomer } from './helpers/fixtures.ts';
import { backupCommand, type CliIo } from '../src/backups/backups.cli.ts';
import { readHeader, verifyBackup } from '../src/backups/database-backup.ts';
import { readFile as readJournalFile } from '../src/backups/erasure-journal.ts';
import { DAY_MS } from '../src/clock.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
});
afterAll(async () => env?.close());

async function cli(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l) };
  const code = await backupCommand(['backup', ...args], env.ctx, env.services, io);
  return { code, out, err };
}

/** Every text, JSON and bytea column of every table (information_schema, not the data map) holding the value. */
async function canaryScan(value: string): Promise<string[]> {
  const cols = await sql<{ table_name: string; column_name: string; data_type: string }>`
    SELECT table_name, column_name, data_type FROM information_schema.columns
    WHERE table_schema = current_schema() AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'bytea')
    ORDER BY table_name, column_name`.execute(env.ctx.db.withoutPlugins());
  expect(cols.rows.length).toBeGreaterThan(50);
  const hits: string[] = [];
  for (const c of cols.rows) {
    const cond = c.data_type === 'bytea'
      ? sql`position(convert_to(${value}, 'UTF8') in ${sql.ref(c.column_name)}) > 0`
      : sql`${sql.ref(c.column_name)}::text LIKE ${`%${value}%`}`;
    const r = await sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql.table(c.table_name)} WHERE ${cond}`.execute(env.ctx.db.withoutPlugins());
    if (r.rows[0]!.n > 0) hits.push(`${c.table_name}.${c.column_name}`);
  }
  return hits;
}

async function rowCounts(): Promise<Record<string, number>> {
  const t = await sql<{ table_name: string }>`
    SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
    .execute(env.ctx.db.withoutPlugins());
  const out: Record<string, number> = {};
  for (const { table_name } of t.rows) {
    out[table_name] = (await sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql.table(table_name)}`.execute(env.ctx.db.withoutPlugins())).rows[0]!.n;
  }
  return out;
}

function runLethe(args: string[], extraEnv: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npx', ['lethe', ...args], {
      cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'warn', ...extraEnv },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('database backups', () => {
  it('`npx lethe backup create` (a real process) writes an encrypted, self-describing file and prints its path', async () => {
    // Same data dir (so the same master key) and, on PostgreSQL, the same database.
    const r = await runLethe(['backup', 'create'], {
      LETHE_DATA_DIR: env.dataDir, ...(env.databaseUrl ? { DATABASE_URL: env.databaseUrl } : {}),
    });
    expect(r.code, r.stderr).toBe(0);
    const file = r.stdout.trim();
    expect(path.dirname(file)).toBe(env.config.backupDir);
    expect(fs.existsSync(file)).toBe(true);
    const { header } = readHeader(file);
    expect(header).toMatchObject({ format: 'lethe.database-backup', version: 1, databaseKind: TEST_DB, keyFingerprint: env.ctx.secrets.fingerprint });
    expect(header.migrations).toContain('0005-backups');
    expect(header.tables).toContain('customers');
    expect(header.tables.indexOf('customers')).toBeLessThan(header.tables.indexOf('addresses'));
    expect(header.journal).toEqual({ seq: 0, count: 0 });
    const verified = await verifyBackup(file, env.ctx.secrets.backupKey, env.ctx.secrets.fingerprint);
    expect(verified.rows.settings).toBe(1);
    fs.rmSync(file);
  }, 120_000);

  it('restore re-applies deletions and confirmations made after the backup: 404, no canary in any column, case confirmed, audit verifies', async () => {
    const canary = `cnry${crypto.randomBytes(5).toString('hex')}`;
    const app = await createApplication(api);
    const appKey = await createAppKey(api, [app.id]);
    const keeper = await createCustomer(api, { email: 'keeper@example.com', firstName: 'Keeper' });
    const c = await createCustomer(api, {
      salutation: `Dr ${canary}`, firstName: `F${canary}`, lastName: `L${canary}`, displayName: `D${canary}`,
      email: `${canary}@example.com`, organization: `O${canary}`, tin: `T${canary}`,
      lastLoginSuccessIp: '203.0.113.7', metadata: { note: `m${canary}` },
    });
    await add(api, c.id, 'addresses', {
      salutation: `s${canary}`, firstName: `f${canary}`, lastName: `l${canary}`, title: `t${canary}`, company: `c${canary}`,
      department: `d${canary}`, line1: `1${canary}`, line2: `2${canary}`, postalCode: `p${canary}`, phone: '+49 30 1234567',
    });
    await add(api, c.id, 'payment-methods', { brand: 'visa', cardId: `card${canary}`, last4: '4242', expMonth: 1, expYear: 2031, token: `tok${canary}` });
    await add(api, c.id, 'subscriptions', { plan: 'pro', giftRecipientEmail: `g${canary}@example.org`, giftRecipientFirstName: `gf${canary}`, giftRecipientLastName: `gl${canary}` });
    await add(api, c.id, 'social-identities', { provider: 'github', externalId: `x${canary}` });
    await add(api, c.id, 'transactions', { amountMinor: 700, currency: 'EUR' });
    // A pending transaction and a legal hold at backup time, cleared before the deletion.
    const pending = await add(api, c.id, 'transactions', { amountMinor: 900, currency: 'EUR', status: 'pending' });
    await add(api, c.id, 'licenses', { applicationId: app.id });
    expect((await api.patch(`/v1/customers/${c.id}`, { legalHold: true })).status).toBe(200);

    env.clock.advance(60_000);
    const backup = await cli('create');
    expect(backup.code, backup.err.join('\n')).toBe(0);
    const file = backup.out[0]!;

    env.clock.advance(60_000);
    // A photo uploaded after the backup: no restored row will reference the file.
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    expect((await api.put(`/v1/customers/${keeper.id}/profile-photo`, png, { 'content-type': 'image/png' })).status).toBe(204);
    const photoKey = (await env.ctx.db.selectFrom('customers').select('profilePhotoKey').where('id', '=', keeper.id).executeTakeFirstOrThrow()).profilePhotoKey!;
    expect((await api.patch(`/v1/customers/${c.id}`, { legalHold: false })).status).toBe(200);
    expect((await api.patch(`/v1/transactions/${pending.id}`, { status: 'succeeded' })).status).toBe(200);
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
    const receiptBefore = (await api.get(`/v1/deletions/${c.id}`)).body;
    const conf = await client(env.app, appKey).post('/v1/data-deletions/confirmations', { subscriptionId: c.id, applicationId: app.id });
    expect(conf.status, JSON.stringify(conf.body)).toBe(200);
    expect((await api.get(`/v1/data-deletions?subscriptionId=${c.id}`)).body.data[0].status).toBe('confirmed');
    // Journaled inside the confirmation's transaction: the table row is there the moment it answers.
    expect(await env.ctx.db.selectFrom('erasureJournal').select('kind').where('id', '=', conf.body.id).execute())
      .toEqual([{ kind: 'confirmation' }]);
    // The journal outside the database has the deletion (and the confirmation).
    const journal = readJournalFile(env.config);
    expect(journal.filter((e) => e.customerId === c.id).map((e) => e.kind).sort()).toEqual(['confirmation', 'deletion']);
    const hitsAfterDelete = await canaryScan(canary);
    expect(hitsAfterDelete).toEqual([]);

    env.clock.advance(60_000);
    const restored = await cli('restore', file);
    expect(restored.code, restored.err.join('\n')).toBe(0);
    expect(restored.out.join('\n')).toContain('replayed 1 deletion(s)');

    // The customer is deleted again, with every personal value gone from every live row.
    for (const p of ['', '/addresses', '/export', '/activity']) expect((await api.get(`/v1/customers/${c.id}${p}`)).status, p).toBe(404);
    const hits = await canaryScan(canary);
    expect(hits).toEqual([]);
    // The receipt is back, dated at the original deletion, with a fresh sealed archive.
    const receipt = await api.get(`/v1/deletions/${c.id}`);
    expect(receipt.status).toBe(200);
    expect(receipt.body.deletedAt).toBe(receiptBefore.deletedAt);
    expect(receipt.body.backupId).toMatch(/^[0-9a-f-]{36}$/);
    expect((await api.get(`/v1/backups?customerId=${c.id}`)).body.data).toHaveLength(1);
    // The restored pending transaction was unlinked (pseudonymized), not left pointing at the customer.
    const tx = await env.ctx.db.selectFrom('transactions').selectAll().where('id', '=', pending.id).executeTakeFirstOrThrow();
    expect(tx.customerId).toBeNull();
    expect(tx.customerRef).toMatch(/^psn_/);
    const cases = await api.get(`/v1/data-deletions?subscriptionId=${c.id}`);
    expect(cases.body.data).toHaveLength(1);
    expect(cases.body.data[0].status).toBe('confirmed');
    // Customers that were alive in the backup and never deleted are back.
    expect((await api.get(`/v1/customers/${keeper.id}`)).status).toBe(200);
    expect(await env.ctx.blobs.exists(photoKey)).toBe(false);
    // The pre-restore archive file was superseded: every archive file belongs to a row.
    const archiveKeys = await env.ctx.blobs.list('archives');
    const rows = await env.ctx.db.selectFrom('backupArchives').select('blobKey').where('blobKey', 'is not', null).execute();
    expect(archiveKeys.sort()).toEqual(rows.map((r) => r.blobKey).sort());

    const verify = await api.get('/v1/audit-events/verify');
    expect(verify.body.valid).toBe(true);
    const types = (await env.ctx.db.selectFrom('auditEvents').select('type').orderBy('seq').execute()).map((e) => e.type);
    expect(types).toContain('backup.restored');
    expect(types.at(-1)).toBe('backup.erasures_replayed');
    expect(types.indexOf('backup.restored')).toBeLessThan(types.lastIndexOf('customer.deleted'));

    // Replaying is idempotent: a second start (or restore of the same state) finds nothing to do.
    const { replayAtStart } = await import('../src/backups/restore.ts');
    expect(await replayAtStart(env.ctx, () => env.services.registry)).toBeNull();
    // Identity sequences continue after the restored rows.
    const other = await createCustomer(api);
    expect((await api.del(`/v1/customers/${other.id}`)).status).toBe(204);
  });

  it('at start, a deletion journaled outside the database that the database lacks is re-applied (a restore by other means)', async () => {
    const c = await createCustomer(api);
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
    const entry = readJournalFile(env.config).find((e) => e.customerId === c.id && e.kind === 'deletion')!;
    expect(entry).toMatchObject({ customerId: c.id, at: env.clock.now().toISOString() });
    // As if an older dump had been loaded with another tool: the customer lives, the database forgot the deletion.
    await env.ctx.db.deleteFrom('deletions').where('customerId', '=', c.id).execute();
    await env.ctx.db.deleteFrom('erasureJournal').where('id', '=', entry.id).execute();
    await env.ctx.db.updateTable('customers').set({ deletedAt: null }).where('id', '=', c.id).execute();
    expect((await api.get(`/v1/customers/${c.id}`)).status).toBe(200);

    const { replayAtStart } = await import('../src/backups/restore.ts');
    const r = await replayAtStart(env.ctx, () => env.services.registry);
    expect(r).toMatchObject({ deletionsReplayed: 1 });
    expect((await api.get(`/v1/customers/${c.id}`)).status).toBe(404);
    expect((await api.get(`/v1/deletions/${c.id}`)).body.deletedAt).toBe(entry.at);
    const row = await env.ctx.db.selectFrom('erasureJournal').selectAll().where('customerId', '=', c.id).execute();
    expect(row.map((x) => x.id)).toEqual([entry.id]);
    expect(await replayAtStart(env.ctx, () => env.services.registry)).toBeNull();
  });

  it('a backup altered by one byte (or truncated) is refused with a clear error and nothing changes', async () => {
    const backup = await cli('create');
    expect(backup.code).toBe(0);
    const file = backup.out[0]!;
    const later = await createCustomer(api);
    const before = await rowCounts();
    const bytes = fs.readFileSync(file);

    const variants: Array<[string, Buffer]> = [];
    const body = Buffer.from(bytes); body[body.length - 40]! ^= 0x01; variants.push(['body', body]);
    const header = Buffer.from(bytes); header[20]! ^= 0x01; variants.push(['header', header]);
    variants.push(['truncated', bytes.subarray(0, bytes.length - 10)]);
    const magic = Buffer.from(bytes); magic[0] = 0; variants.push(['magic', magic]);
    for (const [name, content] of variants) {
      const altered = path.join(env.dataDir, `altered-${name}.lbk`);
      fs.writeFileSync(altered, content);
      const r = await cli('restore', altered);
      expect(r.code, name).toBe(1);
      expect(r.err.join('\n'), name).toMatch(/refused: .*(authentication failed|not a Lethe|corrupt|truncated).*nothing was changed/);
    }
    expect(await rowCounts()).toEqual(before);
    expect((await api.get(`/v1/customers/${later.id}`)).status).toBe(200);
    expect((await cli('restore', path.join(env.dataDir, 'missing.lbk'))).code).toBe(1);
  });

  it('backup files past backupRetentionDays are pruned (CLI and retention job); younger ones stay', async () => {
    for (const f of fs.readdirSync(env.config.backupDir)) if (f.endsWith('.lbk')) fs.rmSync(path.join(env.config.backupDir, f));
    const t0 = env.clock.now().getTime();
    const a = (await cli('create')).out[0]!;
    env.clock.set(new Date(t0 + 20 * DAY_MS));
    const b = (await cli('create')).out[0]!;
    expect((await cli('list')).out).toHaveLength(2);

    env.clock.set(new Date(t0 + 30 * DAY_MS + 1));
    const pruned = await cli('prune');
    expect(pruned.code).toBe(0);
    expect(pruned.out).toEqual([`pruned ${path.basename(a)}`]);
    expect(fs.existsSync(a)).toBe(false);
    expect(fs.existsSync(b)).toBe(true);
    const list = await cli('list');
    expect(list.out).toHaveLength(1);
    expect(list.out[0]).toContain(b);

    env.clock.set(new Date(t0 + 49 * DAY_MS));
    expect((await api.post('/v1/jobs/retention/run')).body.result.backups.backupFilesPruned).toBe(0);
    env.clock.set(new Date(t0 + 50 * DAY_MS + 1));
    expect((await api.post('/v1/jobs/retention/run')).body.result.backups.backupFilesPruned).toBe(1);
    expect(fs.existsSync(b)).toBe(false);
    // The journal file beside the backups is never pruned.
    expect(fs.existsSync(path.join(env.config.backupDir, 'erasure-journal.jsonl'))).toBe(true);
    const audit = await env.ctx.db.selectFrom('auditEvents').select('type').where('type', 'in', ['backup.created', 'backup.pruned']).execute();
    expect(audit.filter((x) => x.type === 'backup.pruned')).toHaveLength(2);
    expect((await api.get('/v1/audit-events/verify')).body.valid).toBe(true);
  });
});
