import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { hashKey } from '../src/auth/api-keys.ts';
import { openDatabase } from '../src/db/database.ts';
import { deriveSecrets, loadMasterKey } from '../src/secrets.ts';
import { ADMIN_KEY, client, createPgDatabase, createTestEnv, TEST_DB, type Client, type TestEnv } from './helpers/runtime.ts';
import { createApplication } from './helpers/fixtures.ts';
import { startServer } from './helpers/process.ts';

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
});
afterAll(async () => env?.close());

const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

/** Every value of every row of every table, as text: a plain key must appear in none of them. */
async function wholeDatabaseText(db: TestEnv['ctx']['db']): Promise<string> {
  const tables = await sql<{ t: string }>`
    SELECT table_name AS t FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`.execute(db);
  expect(tables.rows.length).toBeGreaterThan(10);
  let text = '';
  for (const { t } of tables.rows) {
    const rows = await sql`SELECT * FROM ${sql.table(t)}`.execute(db);
    text += JSON.stringify(rows.rows);
  }
  return text;
}

describe('operator bootstrap', () => {
  it('LETHE_ADMIN_KEY became the first operator key, stored as its hash', async () => {
    expect((await api.get('/v1/customers')).status).toBe(200);
    const rows = await env.ctx.db.selectFrom('apiKeys').selectAll().execute();
    expect(rows).toHaveLength(1);
    // Keyed with a server secret (not the unkeyed SHA-256 of release 1), and no part of the chosen key kept.
    expect(rows[0]).toMatchObject({ kind: 'operator', keyHash: hashKey(ADMIN_KEY, env.ctx.secrets.apiKeyHashKey), revokedAt: null });
    expect(rows[0]!.keyHash).not.toContain(sha256(ADMIN_KEY));
    expect(rows[0]!.keyPrefix).toBe('lethe_op_');
    expect(JSON.stringify(rows)).not.toContain(ADMIN_KEY);
    expect(JSON.stringify(rows)).not.toContain(ADMIN_KEY.slice(9, 14));
  });

  it('a real `node src/main.ts` on an empty data directory prints a generated key once; a restart prints none', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-start-'));
    const pgDb = TEST_DB === 'postgres' ? await createPgDatabase() : null;
    // Debug level: every request line is written, so the check below can see a key leaking into one.
    const processEnv = { LETHE_DATA_DIR: dataDir, LETHE_SCHEDULER: 'false', LETHE_DISPATCHER: 'false', LOG_LEVEL: 'debug',
      ...(pgDb ? { DATABASE_URL: pgDb.url } : {}) };
    try {
      const first = await startServer(processEnv);
      let key: string;
      try {
        const printed = first.output().match(/lethe_op_[A-Za-z0-9_-]{20,}/g) ?? [];
        expect(printed, first.output()).toHaveLength(1);
        key = printed[0]!;
        const ok = await fetch(`${first.url}/v1/customers`, { headers: { authorization: `Bearer ${key}` } });
        expect(ok.status).toBe(200);
        const no = await fetch(`${first.url}/v1/customers`);
        expect(no.status).toBe(401);
        // The key is printed once, never logged again (e.g. by the request it authenticated): the
        // request lines are in the output (so a leak would be seen), the key only in the banner.
        await expect.poll(() => first.output().match(/"route":"\/v1\/customers","status":200/g)?.length ?? 0).toBeGreaterThan(0);
        expect(first.output().split(key).length - 1).toBe(1);
        // SIGTERM is a clean shutdown.
        expect(await first.stop()).toBe(0);
      } finally {
        await first.stop();
      }

      // Only the hash is stored.
      const handle = await openDatabase({ dataDir, ...(pgDb ? { databaseUrl: pgDb.url } : {}) });
      try {
        const rows = await handle.db.selectFrom('apiKeys').selectAll().execute();
        expect(rows).toHaveLength(1);
        const { apiKeyHashKey } = deriveSecrets(loadMasterKey(undefined, dataDir));
        expect(rows[0]).toMatchObject({ kind: 'operator', keyHash: hashKey(key, apiKeyHashKey) });
        expect(await wholeDatabaseText(handle.db)).not.toContain(key);
      } finally {
        await handle.close();
      }

      // The restart runs the default configuration: scheduler and dispatcher in the process too.
      const second = await startServer({ LETHE_DATA_DIR: dataDir, ...(pgDb ? { DATABASE_URL: pgDb.url } : {}) });
      try {
        expect(second.output()).not.toMatch(/lethe_op_/);
        const ok = await fetch(`${second.url}/v1/customers`, { headers: { authorization: `Bearer ${key}` } });
        expect(ok.status).toBe(200);
        expect(await second.stop()).toBe(0);
      } finally {
        await second.stop();
      }
    } finally {
      await pgDb?.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 180_000);
});

describe('POST /v1/api-keys', () => {
  it('issues an operator key, shown once, that works; stored only as a hash', async () => {
    const r = await api.post('/v1/api-keys', { kind: 'operator' });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ kind: 'operator', applicationIds: [] });
    expect(r.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.body.key).toMatch(/^lethe_op_[A-Za-z0-9_-]{40,}$/);
    expect((await client(env.app, r.body.key).get('/v1/customers')).status).toBe(200);
    const row = await env.ctx.db.selectFrom('apiKeys').selectAll().where('id', '=', r.body.id).executeTakeFirstOrThrow();
    expect(row.keyHash).toBe(hashKey(r.body.key, env.ctx.secrets.apiKeyHashKey));
  });

  it('issues an application key for one or several applications', async () => {
    const a = await createApplication(api);
    const b = await createApplication(api);
    const one = await api.post('/v1/api-keys', { kind: 'application', applicationIds: [a.id] });
    expect(one.status).toBe(201);
    expect(one.body).toMatchObject({ kind: 'application', applicationIds: [a.id] });
    expect(one.body.key).toMatch(/^lethe_app_/);
    const two = await api.post('/v1/api-keys', { kind: 'application', applicationIds: [b.id, a.id, b.id] });
    expect(two.status).toBe(201);
    expect([...two.body.applicationIds].sort()).toEqual([a.id, b.id].sort());
    const links = await env.ctx.db.selectFrom('apiKeyApplications').select('applicationId').where('apiKeyId', '=', two.body.id).execute();
    expect(links.map((l) => l.applicationId).sort()).toEqual([a.id, b.id].sort());
  });

  it('rejects malformed requests with 400 validation_failed', async () => {
    const a = await createApplication(api);
    const bad: unknown[] = [
      {}, { kind: 'root' }, { kind: 'operator', applicationIds: [a.id] }, { kind: 'application' },
      { kind: 'application', applicationIds: [] }, { kind: 'application', applicationIds: ['00000000-0000-4000-8000-000000000000'] },
      { kind: 'application', applicationIds: ['not-a-uuid'] }, { kind: 'application', applicationIds: [a.id], admin: true },
    ];
    for (const body of bad) {
      const r = await api.post('/v1/api-keys', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.code).toBe('validation_failed');
    }
  });

  it('only operators issue keys: an application key gets 403, none 401', async () => {
    const a = await createApplication(api);
    const appKey = (await api.post('/v1/api-keys', { kind: 'application', applicationIds: [a.id] })).body.key;
    const r = await client(env.app, appKey).post('/v1/api-keys', { kind: 'operator' });
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('forbidden');
    expect((await client(env.app, null).post('/v1/api-keys', { kind: 'operator' })).status).toBe(401);
  });

  it('issuing a key is audited (ids only)', async () => {
    const r = await api.post('/v1/api-keys', { kind: 'operator' });
    const events = await api.get(`/v1/audit-events?subjectId=${r.body.id}`);
    expect(events.body.data).toEqual([expect.objectContaining({ type: 'api_key.created', subjectId: r.body.id })]);
    expect(events.raw).not.toContain(r.body.key);
  });

  it('with an Idempotency-Key, the issued key is still never stored in plain text', async () => {
    const r = await api.post('/v1/api-keys', { kind: 'operator' }, { 'idempotency-key': 'issue-key-once' });
    expect(r.status).toBe(201);
    const replay = await api.post('/v1/api-keys', { kind: 'operator' }, { 'idempotency-key': 'issue-key-once' });
    expect(replay.status).toBe(201);
    expect(replay.body.id).toBe(r.body.id);
    expect(replay.raw).not.toContain(r.body.key);
    expect(await wholeDatabaseText(env.ctx.db)).not.toContain(r.body.key);
  });

  it('no plain key issued in this file is anywhere in the database', async () => {
    const keys = [];
    for (let i = 0; i < 3; i++) keys.push((await api.post('/v1/api-keys', { kind: 'operator' })).body.key as string);
    const text = await wholeDatabaseText(env.ctx.db);
    for (const k of [...keys, ADMIN_KEY]) expect(text).not.toContain(k);
  });
});

describe('401 and 403', () => {
  it('401 with WWW-Authenticate for a missing, malformed, empty or unknown key', async () => {
    const anon = client(env.app, null);
    const cases: Array<Record<string, string>> = [
      {}, { authorization: '' }, { authorization: 'Bearer' }, { authorization: 'Bearer ' }, { authorization: `Basic ${ADMIN_KEY}` },
      { authorization: ADMIN_KEY }, { authorization: `Bearer ${ADMIN_KEY}x` }, { authorization: `Bearer ${ADMIN_KEY.slice(0, -1)}` },
      { authorization: `Bearer ${sha256(ADMIN_KEY)}` }, { authorization: `Bearer ${'k'.repeat(600)}` },
    ];
    for (const headers of cases) {
      const r = await anon.call('GET', '/v1/customers', undefined, headers);
      expect(r.status, JSON.stringify(headers)).toBe(401);
      expect(r.body.code).toBe('unauthorized');
      expect(r.headers['www-authenticate']).toBe('Bearer');
    }
  });

  it('the scheme is case-insensitive', async () => {
    const r = await client(env.app, null).call('GET', '/v1/customers', undefined, { authorization: `bearer ${ADMIN_KEY}` });
    expect(r.status).toBe(200);
  });

  it('a revoked key is 401', async () => {
    const r = await api.post('/v1/api-keys', { kind: 'operator' });
    const k = client(env.app, r.body.key);
    expect((await k.get('/v1/customers')).status).toBe(200);
    await env.ctx.db.updateTable('apiKeys').set({ revokedAt: env.clock.now() }).where('id', '=', r.body.id).execute();
    expect((await k.get('/v1/customers')).status).toBe(401);
  });

  it('403 for an application key on operator routes (read and write)', async () => {
    const a = await createApplication(api);
    const appKey = (await api.post('/v1/api-keys', { kind: 'application', applicationIds: [a.id] })).body.key;
    const k = client(env.app, appKey);
    // Its own application is self-service (SPEC "Application API"); another application's is 403.
    const other = await createApplication(api);
    for (const [method, url] of [['GET', '/v1/customers'], ['POST', '/v1/customers'], ['GET', '/v1/applications'],
      ['GET', `/v1/applications/${other.id}`], ['GET', '/v1/audit-events']] as const) {
      const r = await k.call(method, url, method === 'POST' ? {} : undefined);
      expect(r.status, `${method} ${url}`).toBe(403);
      expect(r.body.code).toBe('forbidden');
    }
  });
});

describe('applications', () => {
  it('POST returns a whsec_ secret once; GET never shows it', async () => {
    const r = await api.post('/v1/applications', { name: 'Partner One' });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ name: 'Partner One', webhookUrl: null, createdAt: env.clock.now().toISOString() });
    expect(r.body.webhookSecret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(r.body.webhookSecret.slice('whsec_'.length), 'base64').length).toBeGreaterThanOrEqual(24);
    const other = await api.post('/v1/applications', { name: 'Partner Two' });
    expect(other.body.webhookSecret).not.toBe(r.body.webhookSecret);
    const one = await api.get(`/v1/applications/${r.body.id}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id: r.body.id, name: 'Partner One' });
    expect(one.raw).not.toContain(r.body.webhookSecret.slice('whsec_'.length));
    const list = await api.get('/v1/applications?limit=500');
    expect(list.body.data.map((a: { id: string }) => a.id)).toContain(r.body.id);
    expect(list.raw).not.toContain('whsec_');
    expect((await api.get('/v1/applications/00000000-0000-4000-8000-000000000000')).status).toBe(404);
  });

  it('a webhook URL is stored; names and URLs are validated', async () => {
    const r = await api.post('/v1/applications', { name: 'Hooked', webhookUrl: 'http://127.0.0.1:9/hook' });
    expect(r.status, r.raw).toBe(201);
    expect(r.body.webhookUrl).toBe('http://127.0.0.1:9/hook');
    for (const body of [{}, { name: '' }, { name: 'x'.repeat(201) }, { name: 'x', webhookUrl: 'not a url' }, { name: 'x', webhookUrl: 'ftp://example.com/' }, { name: 'x', secret: 'mine' }]) {
      const e = await api.post('/v1/applications', body);
      expect(e.status, JSON.stringify(body)).toBe(400);
      expect(['validation_failed', 'unsafe_webhook_url']).toContain(e.body.code);
    }
  });
});
