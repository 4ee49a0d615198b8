import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../src/audit/canonical-json.ts';
import { DAY_MS } from '../src/clock.ts';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createCustomer, customerBody } from './helpers/fixtures.ts';

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
});
afterAll(async () => env?.close());

let n = 0;
const newKey = () => `idem-${Date.now()}-${n++}`;
// E-mails are stored encrypted: counted through their blind index.
const countByEmail = async (email: string) => Number((await env.ctx.db.selectFrom('customers')
  .select((eb) => eb.fn.countAll<number>().as('n')).where('emailBidx', '=', env.ctx.crypto.blindIndex(email)).executeTakeFirstOrThrow()).n);

describe('Idempotency-Key on POST', () => {
  it('a replay returns the first status and body, and creates nothing more', async () => {
    const key = newKey();
    const body = customerBody();
    const first = await api.post('/v1/customers', body, { 'idempotency-key': key });
    expect(first.status).toBe(201);
    const again = await api.post('/v1/customers', body, { 'idempotency-key': key });
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(await countByEmail(body.email)).toBe(1);
    // Without a key every POST is a new request.
    expect((await api.post('/v1/customers', body)).status).toBe(201);
    expect(await countByEmail(body.email)).toBe(2);
  });

  it('the key is stored in the database, not in memory', async () => {
    const key = newKey();
    await api.post('/v1/customers', customerBody(), { 'idempotency-key': key });
    const row = await env.ctx.db.selectFrom('idempotencyKeys').selectAll().where('key', '=', key).executeTakeFirst();
    expect(row).toMatchObject({ statusCode: 201, method: 'POST', path: '/v1/customers' });
  });

  it('the stored request hash is keyed (HMAC), and a row written before that (plain SHA-256) still replays', async () => {
    const key = newKey();
    const body = customerBody();
    const first = await api.post('/v1/customers', body, { 'idempotency-key': key });
    const row = await env.ctx.db.selectFrom('idempotencyKeys').selectAll().where('key', '=', key).executeTakeFirstOrThrow();
    // What release 1 stored: SHA-256 of the route, params, query and body; anyone with the table could
    // confirm a guessed e-mail with it. Now an HMAC under a key derived from the master key.
    const text = `POST /v1/customers {} {}\n${canonicalJson(body)}`;
    const plain = crypto.createHash('sha256').update(text).digest('hex');
    expect(row.bodyHash).toBe(`h1:${crypto.createHmac('sha256', env.ctx.secrets.idempotencyHashKey).update(text).digest('hex')}`);
    expect(row.bodyHash).not.toContain(plain);
    await env.ctx.db.updateTable('idempotencyKeys').set({ bodyHash: plain }).where('key', '=', key).execute();
    const again = await api.post('/v1/customers', body, { 'idempotency-key': key });
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toEqual(first.body);
    expect((await api.post('/v1/customers', customerBody(), { 'idempotency-key': key })).status).toBe(409);
  });

  it('an error response is replayed as well (first status and body)', async () => {
    const key = newKey();
    const url = '/v1/customers/00000000-0000-4000-8000-000000000000/addresses';
    const first = await api.post(url, { city: 'Oslo' }, { 'idempotency-key': key });
    expect(first.status).toBe(404);
    const again = await api.post(url, { city: 'Oslo' }, { 'idempotency-key': key });
    expect(again.status).toBe(404);
    expect(again.body).toEqual(first.body);
    expect(String(again.headers['content-type'])).toContain('application/problem+json');
  });

  it('the same key with another body is 409 idempotency_key_reused; the first result is untouched', async () => {
    const key = newKey();
    const a = customerBody();
    const first = await api.post('/v1/customers', a, { 'idempotency-key': key });
    const b = customerBody();
    const other = await api.post('/v1/customers', b, { 'idempotency-key': key });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('idempotency_key_reused');
    expect(String(other.headers['content-type'])).toContain('application/problem+json');
    expect(await countByEmail(b.email)).toBe(0);
    // Key order in the body does not make it "another body".
    const reordered = Object.fromEntries(Object.entries(a).reverse());
    const replay = await api.post('/v1/customers', reordered, { 'idempotency-key': key });
    expect(replay.status).toBe(201);
    expect(replay.body.id).toBe(first.body.id);
  });

  it('the same key on another path is 409 too', async () => {
    const key = newKey();
    expect((await api.post('/v1/applications', { name: 'one' }, { 'idempotency-key': key })).status).toBe(201);
    const r2 = await api.post('/v1/customers', {}, { 'idempotency-key': key });
    expect(r2.status).toBe(409);
    expect(r2.body.code).toBe('idempotency_key_reused');
  });

  it('concurrent requests with one key make one effect and all answer the same', async () => {
    const key = newKey();
    const body = customerBody();
    const results = await Promise.all(Array.from({ length: 6 }, () => api.post('/v1/customers', body, { 'idempotency-key': key })));
    for (const r of results) {
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(r.body.id).toBe(results[0]!.body.id);
    }
    expect(await countByEmail(body.email)).toBe(1);
  });

  it('concurrent child creations with one key add one record', async () => {
    const c = await createCustomer(api);
    const key = newKey();
    const results = await Promise.all(Array.from({ length: 4 }, () =>
      api.post(`/v1/customers/${c.id}/addresses`, { city: 'Lyon' }, { 'idempotency-key': key })));
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    expect((await api.get(`/v1/customers/${c.id}/addresses`)).body.data).toHaveLength(1);
  });

  it('a stored response is kept for at least 24 hours (fake clock)', async () => {
    const key = newKey();
    const body = customerBody();
    const first = await api.post('/v1/customers', body, { 'idempotency-key': key });
    env.clock.advance(DAY_MS - 1000);
    const retention = await api.post('/v1/jobs/retention/run');
    expect(retention.status).toBe(200);
    const replay = await api.post('/v1/customers', body, { 'idempotency-key': key });
    expect(replay.status).toBe(201);
    expect(replay.body.id).toBe(first.body.id);
    expect(await countByEmail(body.email)).toBe(1);
    env.clock.advance(1000);
    expect((await api.post('/v1/customers', body, { 'idempotency-key': key })).body.id).toBe(first.body.id);
    // Well past a day the key is forgotten (and purged by the retention job).
    env.clock.advance(DAY_MS);
    await api.post('/v1/jobs/retention/run');
    expect(await env.ctx.db.selectFrom('idempotencyKeys').select('key').where('key', '=', key).executeTakeFirst()).toBeUndefined();
  });

  it('the replay window is settings.idempotencyRetentionHours: replayed within it, run again after it; the purge removes only expired rows', async () => {
    expect((await api.patch('/v1/settings', { idempotencyRetentionHours: 2 })).status).toBe(200);
    try {
      const key = newKey();
      const body = customerBody();
      const first = await api.post('/v1/customers', body, { 'idempotency-key': key });
      expect(first.status).toBe(201);
      env.clock.advance(2 * 3600_000 - 1000); // within the retention: replayed
      const replay = await api.post('/v1/customers', body, { 'idempotency-key': key });
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.body.id).toBe(first.body.id);
      expect(await countByEmail(body.email)).toBe(1);
      // A key used an hour later, still young at the purge below.
      const youngKey = newKey();
      env.clock.advance(-3600_000);
      await api.post('/v1/customers', customerBody(), { 'idempotency-key': youngKey });
      env.clock.advance(3600_000 + 2000); // the first key: 2 h + 1 s old, past the retention
      const rerun = await api.post('/v1/customers', body, { 'idempotency-key': key });
      // Run again, not replayed: a second customer with the same body.
      expect(rerun.status).toBe(201);
      expect(rerun.headers['idempotent-replayed']).toBeUndefined();
      expect(rerun.body.id).not.toBe(first.body.id);
      expect(await countByEmail(body.email)).toBe(2);
      // The re-run claimed the key afresh (created now); a key stored 2 h + 1 s ago, never reused, is purged.
      const staleKey = newKey();
      env.clock.advance(-(2 * 3600_000 + 1000));
      await api.post('/v1/customers', customerBody(), { 'idempotency-key': staleKey });
      env.clock.advance(2 * 3600_000 + 1000);
      const purge = await api.post('/v1/jobs/retention/run');
      expect(purge.body.result['idempotency-keys'].deleted).toBeGreaterThanOrEqual(1);
      const left = new Set((await env.ctx.db.selectFrom('idempotencyKeys').select('key')
        .where('key', 'in', [key, youngKey, staleKey]).execute()).map((r) => r.key));
      expect(left).toEqual(new Set([key, youngKey]));
    } finally {
      expect((await api.patch('/v1/settings', { idempotencyRetentionHours: 24 })).status).toBe(200);
    }
  });

  it('keys are scoped per API key: another key with the same Idempotency-Key is a new request', async () => {
    const created = await api.post('/v1/api-keys', { kind: 'operator' });
    const other = client(env.app, created.body.key);
    const key = newKey();
    const body = customerBody();
    const a = await api.post('/v1/customers', body, { 'idempotency-key': key });
    const b = await other.post('/v1/customers', body, { 'idempotency-key': key });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.body.id).not.toBe(a.body.id);
    expect(b.headers['idempotent-replayed']).toBeUndefined();
    // And another key's different body does not collide either.
    expect((await other.post('/v1/customers', customerBody(), { 'idempotency-key': newKey() })).status).toBe(201);
  });

  it('an Idempotency-Key over 255 characters is 400', async () => {
    const r = await api.post('/v1/customers', {}, { 'idempotency-key': 'k'.repeat(256) });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('validation_failed');
  });

  it('every stored response that repeats a customer\'s data names that customer (so deletion can purge it)', async () => {
    const body = customerBody();
    const createKey = newKey();
    const c = await api.post('/v1/customers', body, { 'idempotency-key': createKey });
    const addKey = newKey();
    await api.post(`/v1/customers/${c.body.id}/addresses`, { city: 'Graz' }, { 'idempotency-key': addKey });
    const sub = await add(api, c.body.id, 'subscriptions', { plan: 'pro', giftRecipientEmail: `gift.${n}@example.org` });
    const cancelKey = newKey();
    expect((await api.post(`/v1/subscriptions/${sub.id}/cancel`, {}, { 'idempotency-key': cancelKey })).status).toBe(200);
    const rows = await env.ctx.db.selectFrom('idempotencyKeys').select(['key', 'customerId'])
      .where('key', 'in', [createKey, addKey, cancelKey]).orderBy('key').execute();
    expect(rows).toHaveLength(3);
    for (const row of rows) expect(row.customerId, row.key).toBe(c.body.id);
  });

  it('after the customer is deleted, no replay reveals their data', async () => {
    const body = customerBody();
    const createKey = newKey();
    const c = await api.post('/v1/customers', body, { 'idempotency-key': createKey });
    const gift = `gift.after.${n}@example.org`;
    const sub = await add(api, c.body.id, 'subscriptions', { plan: 'pro', giftRecipientEmail: gift });
    const cancelKey = newKey();
    expect((await api.post(`/v1/subscriptions/${sub.id}/cancel`, {}, { 'idempotency-key': cancelKey })).status).toBe(200);
    expect((await api.del(`/v1/customers/${c.body.id}`)).status).toBe(204);
    const created = await api.post('/v1/customers', body, { 'idempotency-key': createKey });
    const cancelled = await api.post(`/v1/subscriptions/${sub.id}/cancel`, {}, { 'idempotency-key': cancelKey });
    for (const r of [created, cancelled]) {
      expect(r.status).toBeLessThan(500);
      for (const value of [body.email, body.firstName, body.lastName, gift]) expect(r.raw).not.toContain(value);
    }
    const stored = JSON.stringify(await env.ctx.db.selectFrom('idempotencyKeys').selectAll().where('key', 'in', [createKey, cancelKey]).execute());
    for (const value of [body.email, body.firstName, gift]) expect(stored).not.toContain(value);
  });
});
