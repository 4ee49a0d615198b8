import crypto from 'node:crypto';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { legacyHashKey, weakAdminKeyReason } from '../src/auth/api-keys.ts';
import { registerAuth } from '../src/http/auth.ts';
import { ADMIN_KEY, client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { createCustomer } from './helpers/fixtures.ts';

/**
 * Issue 17: each finding of the security review, reproduced as it was found (these requests
 * succeeded before the fix) and refused now.
 */
let env: TestEnv;
let api: Client;
let anon: Client;
beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
  anon = client(env.app, null);
});
afterAll(async () => env?.close());

describe('critical: an encoded path no longer skips authentication', () => {
  it('GET/POST /%761/customers with no key: 401, no data, no effect', async () => {
    const c = await createCustomer(api);
    const before = (await env.ctx.db.selectFrom('customers').select('id').execute()).length;
    for (const url of ['/%761/customers', '/%76%31/customers', '/v1/customer%73', '/%761/customers/' + c.id, `/%761/customers/${c.id}/export`]) {
      const r = await anon.get(url);
      expect(r.status, url).toBe(401);
      expect(r.raw).not.toContain(c.email);
    }
    const created = await anon.post('/%761/customers', { email: 'attacker@example.com' });
    expect(created.status).toBe(401);
    const patched = await anon.patch(`/%761/customers/${c.id}`, { firstName: 'Mallory' });
    expect(patched.status).toBe(401);
    expect((await env.ctx.db.selectFrom('customers').select('id').execute()).length).toBe(before);
    expect((await api.get(`/v1/customers/${c.id}`)).body.firstName).not.toBe('Mallory');
    // The operator key still works through the encoded spelling (the route is matched, then authorized).
    expect((await api.get('/%761/customers')).status).toBe(200);
  });

  it('a route that declares no access stops the server from starting', async () => {
    const app = Fastify();
    registerAuth(app, env.ctx.db, { secrets: env.ctx.secrets, perKeyPerMinute: 10, perAddressPerMinute: 10 });
    expect(() => app.get('/v2/anything', async () => 'open')).toThrow(/declares no access/);
    expect(() => app.get('/healthz2', async () => 'open')).toThrow(/declares no access/);
    expect(() => app.get('/ok', { config: { access: 'public' } }, async () => 'ok')).not.toThrow();
    expect(() => app.get('/typo', { config: { access: 'pubic' as 'public' } }, async () => 'x')).toThrow(/declares no access/);
    await app.close();
  });

  it('idempotency: POST /v1/customer%73 stores its response under the created customer, purged by its deletion', async () => {
    const r = await api.post('/v1/customer%73', { email: 'idem.enc@example.com', firstName: 'Idem' }, { 'idempotency-key': 'enc-1' });
    expect(r.status).toBe(201);
    const row = await env.ctx.db.selectFrom('idempotencyKeys').selectAll().where('key', '=', 'enc-1').executeTakeFirstOrThrow();
    expect(row.customerId).toBe(r.body.id);
    expect(row.path).toBe('/v1/customers');
    // The same request spelled plainly is a replay of it, not a new customer.
    const replay = await api.post('/v1/customers', { email: 'idem.enc@example.com', firstName: 'Idem' }, { 'idempotency-key': 'enc-1' });
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect((await api.del(`/v1/customers/${r.body.id}`)).status).toBe(204);
    const after = await api.post('/v1/customer%73', { email: 'idem.enc@example.com', firstName: 'Idem' }, { 'idempotency-key': 'enc-1' });
    expect(after.raw).not.toContain('idem.enc@example.com');
  });
});

describe('medium: rate limits in two steps', () => {
  let limited: TestEnv;
  beforeAll(async () => {
    limited = await createTestEnv({ env: { LETHE_RATE_LIMIT_PER_MINUTE: '5', LETHE_RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '8' } });
  });
  afterAll(async () => limited?.close());

  it('a flood of missing or wrong keys from one address gets 429 (was: 30 × 401)', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await limited.app.inject({ url: '/v1/customers', remoteAddress: '198.51.100.9', headers: i % 2 ? { authorization: `Bearer wrong-${i}` } : {} });
      statuses.push(r.statusCode);
    }
    expect(statuses.slice(0, 8).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(8).every((s) => s === 429)).toBe(true);
    // Another address is not affected; public routes are never limited.
    expect((await limited.app.inject({ url: '/v1/customers', remoteAddress: '198.51.100.10' })).statusCode).toBe(401);
    expect((await limited.app.inject({ url: '/healthz', remoteAddress: '198.51.100.9' })).statusCode).toBe(200);
  });

  it('one bucket per key however Bearer is spelled; the encoded path is limited too', async () => {
    const spellings = [`Bearer ${ADMIN_KEY}`, `bearer ${ADMIN_KEY}`, `BEARER ${ADMIN_KEY}`, `Bearer  ${ADMIN_KEY}`, `bEaReR\t${ADMIN_KEY} `];
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await limited.app.inject({ url: i % 2 ? '/%761/customers' : '/v1/customers', remoteAddress: `203.0.113.${i}`,
        headers: { authorization: spellings[i % spellings.length]! } });
      statuses.push(r.statusCode);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
  });

  it('X-Forwarded-For is believed only from LETHE_TRUSTED_PROXIES', async () => {
    // Untrusted: a client cannot pick a fresh address per request.
    const spoof = [];
    for (let i = 0; i < 10; i++) {
      spoof.push((await limited.app.inject({ url: '/v1/audit-events', remoteAddress: '198.51.100.77', headers: { 'x-forwarded-for': `10.9.9.${i}` } })).statusCode);
    }
    expect(spoof.filter((s) => s === 429).length).toBe(2);
    const proxied = await createTestEnv({ env: { LETHE_RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '2', LETHE_TRUSTED_PROXIES: '192.0.2.1,10.0.0.0/8' } });
    try {
      const via = (client: string) => proxied.app.inject({ url: '/v1/customers', remoteAddress: '10.1.2.3', headers: { 'x-forwarded-for': client } });
      expect([(await via('198.51.100.1')).statusCode, (await via('198.51.100.1')).statusCode, (await via('198.51.100.1')).statusCode]).toEqual([401, 401, 429]);
      expect((await via('198.51.100.2')).statusCode).toBe(401); // each real client has its own budget behind the proxy
    } finally { await proxied.close(); }
  });
});

describe('medium: keys at rest', () => {
  it('a chosen LETHE_ADMIN_KEY for an empty database must be long and varied', () => {
    expect(weakAdminKeyReason('a'.repeat(40))).toMatch(/variety/);
    expect(weakAdminKeyReason('short_but_Varied_123')).toMatch(/32/);
    expect(weakAdminKeyReason('abcdefghijklmnopqrstuvwxyzabcdefgh')).toMatch(/mix/);
    expect(weakAdminKeyReason(ADMIN_KEY)).toBeNull();
  });

  it('a weak LETHE_ADMIN_KEY refuses to create the first key (checked only when the key table is empty)', async () => {
    await expect(createTestEnv({ env: { LETHE_ADMIN_KEY: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' } })).rejects.toThrow(/variety/);
  });

  it('a key stored by release 1 (unkeyed SHA-256) still works, and is rehashed on first use', async () => {
    const plain = `lethe_op_${crypto.randomBytes(32).toString('base64url')}`;
    const row = await env.ctx.db.insertInto('apiKeys').values({ kind: 'operator', keyHash: legacyHashKey(plain), keyPrefix: plain.slice(0, 12),
      createdByKeyId: null, createdAt: new Date(), revokedAt: null }).returning('id').executeTakeFirstOrThrow();
    expect((await client(env.app, plain).get('/v1/customers')).status).toBe(200);
    const after = await env.ctx.db.selectFrom('apiKeys').select('keyHash').where('id', '=', row.id).executeTakeFirstOrThrow();
    expect(after.keyHash).toMatch(/^hmac1:[0-9a-f]{64}$/);
    expect(after.keyHash).not.toContain(legacyHashKey(plain));
    expect((await client(env.app, plain).get('/v1/customers')).status).toBe(200);
  });
});

describe('low findings', () => {
  it('cursors: 36 dashes, out-of-range or non-canonical time, junk JSON → 400, never 500', async () => {
    const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const bad = [
      enc({ t: '2026-01-01T00:00:00.000Z', id: '-'.repeat(36) }),
      enc({ t: '+275760-09-13T00:00:00.000Z', id: crypto.randomUUID() }),
      enc({ t: '9999999-01-01', id: crypto.randomUUID() }),
      enc({ t: '2026-02-30T00:00:00.000Z', id: crypto.randomUUID() }),
      enc({ t: '2026-01-01T00:00:00.000Z', id: 'gggggggg-gggg-gggg-gggg-gggggggggggg' }),
      enc(null), enc([1]), enc('x'),
    ];
    for (const cursor of bad) {
      for (const url of ['/v1/customers', '/v1/applications']) {
        const r = await api.get(`${url}?cursor=${cursor}`);
        expect(r.status, `${url} ${Buffer.from(cursor, 'base64url').toString()}`).toBe(400);
        expect(r.body.code).toBe('validation_failed');
      }
    }
  });

  it('security headers on every response: API, errors, 404, public routes', async () => {
    for (const r of [await api.get('/v1/customers'), await anon.get('/v1/customers'), await anon.get('/nope'), await anon.get('/healthz'),
      await anon.get('/openapi.json'), await api.get('/v1/customers?cursor=x')]) {
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(r.headers['referrer-policy']).toBe('no-referrer');
      expect(r.headers['x-frame-options']).toBe('DENY');
      expect(String(r.headers['content-security-policy'])).toContain("frame-ancestors 'none'");
    }
  });

  it('/metrics takes LETHE_METRICS_TOKEN when set', async () => {
    expect((await anon.get('/metrics')).status).toBe(200); // unset: open, as documented
    const token = 'metrics-token-0123456789';
    const m = await createTestEnv({ env: { LETHE_METRICS_TOKEN: token } });
    try {
      for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789' }, { authorization: ADMIN_KEY }]) {
        const r = await m.app.inject({ url: '/metrics', headers });
        expect(r.statusCode).toBe(401);
        expect(r.body).not.toContain('lethe_http_requests_total');
      }
      const ok = await m.app.inject({ url: '/metrics', headers: { authorization: `bearer ${token}` } });
      expect(ok.statusCode).toBe(200);
      expect(ok.body).toContain('lethe_http_requests_total');
    } finally { await m.close(); }
  });

  it('metrics label requests by the matched route pattern, not the URL text', async () => {
    await api.get('/%761/customers');
    const text = await env.ctx.metrics.registry.metrics();
    expect(text).toContain('route="/v1/customers"');
    expect(text).not.toContain('%76');
  });
});

describe('files at rest (real process, umask 000)', () => {
  it('the data and backup directories are 0700 and the files Lethe writes 0600, whatever the umask', async () => {
    const { startServer } = await import('./helpers/process.ts');
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const { TEST_DB, createPgDatabase } = await import('./helpers/runtime.ts');
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-umask-'));
    fs.chmodSync(dataDir, 0o777);
    const pgDb = TEST_DB === 'postgres' ? await createPgDatabase() : null;
    const old = process.umask(0);
    let server;
    try {
      server = await startServer({ LETHE_DATA_DIR: dataDir, LETHE_ADMIN_KEY: ADMIN_KEY, LETHE_SCHEDULER: 'false', LETHE_DISPATCHER: 'false',
        ...(pgDb ? { DATABASE_URL: pgDb.url } : {}) });
    } finally { process.umask(old); }
    try {
      const h = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' };
      const c = await (await fetch(`${server.url}/v1/customers`, { method: 'POST', headers: h, body: JSON.stringify({ email: 'umask@example.com' }) })).json() as { id: string };
      const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
      expect((await fetch(`${server.url}/v1/customers/${c.id}/profile-photo`, { method: 'PUT', headers: { ...h, 'content-type': 'image/png' }, body: png })).status).toBe(204);
      expect((await fetch(`${server.url}/v1/customers/${c.id}`, { method: 'DELETE', headers: { authorization: h.authorization } })).status).toBe(204);
      expect(await server.stop()).toBe(0);
      const seen: string[] = [];
      const visit = (p: string) => {
        const st = fs.lstatSync(p);
        seen.push(path.relative(dataDir, p));
        expect(st.mode & 0o777, p).toBe(st.isDirectory() ? 0o700 : 0o600);
        if (st.isDirectory()) for (const n of fs.readdirSync(p)) visit(path.join(p, n));
      };
      visit(dataDir);
      expect(seen).toContain('master.key');
      expect(seen.some((p) => p.endsWith('erasure-journal.jsonl'))).toBe(true);
      expect(seen.some((p) => p.endsWith('audit-checkpoints.jsonl'))).toBe(true);
    } finally {
      await server.stop();
      await pgDb?.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 180_000);
});
