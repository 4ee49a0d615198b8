import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { buildApp } from '../src/app.ts';
import { startRuntime, type Runtime } from '../src/runtime.ts';
import { createServices } from '../src/services.ts';
import type { FastifyInstance } from 'fastify';
import { client, createTestEnv, TEST_DB, type Client, type TestEnv } from './helpers/runtime.ts';
import { createApplication } from './helpers/fixtures.ts';

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv({ clockStart: '2026-04-01T09:00:00Z' });
  api = client(env.app, env.operatorKey);
});
afterAll(async () => env?.close());

const auditOf = (subjectId: string) => env.ctx.db.selectFrom('auditEvents').select(['type', 'actorKeyId', 'data'])
  .where('subjectId', '=', subjectId).orderBy('seq').execute();

describe('API key lifecycle', () => {
  it('issues a key with label and expiry; lists and reads it without the key; audits issue and revoke with ids only', async () => {
    const app = await createApplication(api);
    const created = await api.post('/v1/api-keys', { kind: 'application', applicationIds: [app.id], label: 'shop backend', expiresAt: '2026-05-01T00:00:00Z' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ kind: 'application', applicationIds: [app.id], label: 'shop backend', expiresAt: '2026-05-01T00:00:00.000Z' });
    const id = created.body.id as string;

    const one = await api.get(`/v1/api-keys/${id}`);
    expect(one.status).toBe(200);
    expect(one.body).toEqual({
      id, kind: 'application', applicationIds: [app.id], label: 'shop backend', createdAt: '2026-04-01T09:00:00.000Z',
      expiresAt: '2026-05-01T00:00:00.000Z', lastUsedAt: null, revokedAt: null,
    });
    const list = await api.get('/v1/api-keys?limit=500');
    expect(list.status).toBe(200);
    expect(list.body.data.map((k: { id: string }) => k.id)).toContain(id);
    // The plain key (or its hash) is never in a listing.
    expect(list.raw).not.toContain(created.body.key);
    for (const k of list.body.data) expect(Object.keys(k).sort()).toEqual(
      ['applicationIds', 'createdAt', 'expiresAt', 'id', 'kind', 'label', 'lastUsedAt', 'revokedAt']);

    expect((await api.get('/v1/api-keys/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await api.post('/v1/api-keys', { kind: 'operator', expiresAt: '2026-03-01T00:00:00Z' })).status).toBe(400);

    // Works, then revoked: 401, and revocation is audited with ids only.
    const appApi = client(env.app, created.body.key as string);
    expect((await appApi.get('/v1/data-deletions')).status).toBe(200);
    expect((await api.del(`/v1/api-keys/${id}`)).status).toBe(204);
    expect((await appApi.get('/v1/data-deletions')).status).toBe(401);
    expect((await api.get(`/v1/api-keys/${id}`)).body.revokedAt).toBe('2026-04-01T09:00:00.000Z');
    expect((await api.del(`/v1/api-keys/${id}`)).status).toBe(204); // already revoked: no change
    const events = await auditOf(id);
    expect(events.map((e) => e.type)).toEqual(['api_key.created', 'api_key.revoked']);
    expect(JSON.stringify(events)).not.toContain('shop backend');
    expect(JSON.stringify(events)).not.toContain(created.body.key);
  });

  it('an expired key answers 401', async () => {
    const created = await api.post('/v1/api-keys', { kind: 'operator', expiresAt: '2026-04-01T10:00:00Z' });
    const k = client(env.app, created.body.key as string);
    expect((await k.get('/v1/settings')).status).toBe(200);
    env.clock.advance(60 * 60 * 1000);
    const r = await k.get('/v1/settings');
    expect(r.status).toBe(401);
    expect(r.body.code).toBe('unauthorized');
    env.clock.advance(-60 * 60 * 1000);
    expect((await k.get('/v1/settings')).status).toBe(200);
    env.clock.advance(60 * 60 * 1000 + 1);
  });

  it('lastUsedAt is written at most once a minute per key, not per request', async () => {
    const created = await api.post('/v1/api-keys', { kind: 'operator', label: 'ci' });
    const id = created.body.id as string;
    const k = client(env.app, created.body.key as string);
    const t0 = env.clock.now();
    for (let i = 0; i < 5; i++) expect((await k.get('/v1/settings')).status).toBe(200);
    const first = (await api.get(`/v1/api-keys/${id}`)).body.lastUsedAt;
    expect(first).toBe(t0.toISOString());
    env.clock.advance(30_000);
    await k.get('/v1/settings');
    expect((await api.get(`/v1/api-keys/${id}`)).body.lastUsedAt).toBe(first);
    env.clock.advance(31_000);
    await k.get('/v1/settings');
    expect((await api.get(`/v1/api-keys/${id}`)).body.lastUsedAt).toBe(new Date(t0.getTime() + 61_000).toISOString());
    await api.del(`/v1/api-keys/${id}`);
  });

  it('PATCH sets, changes and clears a label (also of a revoked key); audited without the text; 404, 400', async () => {
    const app = await createApplication(api);
    const created = await api.post('/v1/api-keys', { kind: 'application', applicationIds: [app.id] });
    const id = created.body.id as string;
    const set = await api.patch(`/v1/api-keys/${id}`, { label: '  billing service  ' });
    expect(set.status).toBe(200);
    expect(set.body).toEqual({ ...(await api.get(`/v1/api-keys/${id}`)).body, label: 'billing service' });
    expect(Object.keys(set.body).sort()).toEqual(['applicationIds', 'createdAt', 'expiresAt', 'id', 'kind', 'label', 'lastUsedAt', 'revokedAt']);
    expect(set.raw).not.toContain(created.body.key);
    expect((await api.get('/v1/api-keys?limit=500')).body.data.find((k: { id: string }) => k.id === id).label).toBe('billing service');
    // The same label again changes nothing (no audit row); a new one and a revoked key's label are changes.
    expect((await api.patch(`/v1/api-keys/${id}`, { label: 'billing service' })).status).toBe(200);
    expect((await api.patch(`/v1/api-keys/${id}`, { label: 'billing v2' })).body.label).toBe('billing v2');
    expect((await api.del(`/v1/api-keys/${id}`)).status).toBe(204);
    const cleared = await api.patch(`/v1/api-keys/${id}`, { label: '   ' });
    expect(cleared.body).toMatchObject({ label: null, revokedAt: expect.any(String) });
    expect((await api.patch(`/v1/api-keys/${id}`, { label: null })).body.label).toBe(null);
    const events = await auditOf(id);
    expect(events.map((e) => [e.type, e.actorKeyId !== null, (e.data as { label?: string }).label ?? null])).toEqual([
      ['api_key.created', true, null], ['api_key.labelled', true, 'set'], ['api_key.labelled', true, 'set'],
      ['api_key.revoked', true, null], ['api_key.labelled', true, 'cleared'],
    ]);
    expect(JSON.stringify(events)).not.toMatch(/billing/);

    expect((await api.patch('/v1/api-keys/00000000-0000-4000-8000-000000000000', { label: 'x' })).status).toBe(404);
    for (const body of [{ label: 'x'.repeat(201) }, {}, { label: 5 }, { label: 'ok', kind: 'operator' }]) {
      const r = await api.patch(`/v1/api-keys/${id}`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.code).toBe('validation_failed');
    }
    expect((await api.patch('/v1/api-keys/not-a-uuid', { label: 'x' })).status).toBe(400);
    expect((await api.get(`/v1/api-keys/${id}`)).body.label).toBe(null);
    // Operators only: an application key is refused and changes nothing.
    const partner = client(env.app, (await api.post('/v1/api-keys', { kind: 'application', applicationIds: [app.id] })).body.key as string);
    const refused = await partner.patch(`/v1/api-keys/${id}`, { label: 'mine now' });
    expect(refused.status).toBe(403);
    expect((await api.get(`/v1/api-keys/${id}`)).body.label).toBe(null);
  });

  it('409 last_operator_key for the last active operator key; an expired operator key does not count', async () => {
    // Revoke every other operator key, leaving the admin key.
    const keys = (await api.get('/v1/api-keys?limit=500')).body.data as Array<{ id: string; kind: string; revokedAt: string | null }>;
    const adminKeyId = (await env.ctx.db.selectFrom('apiKeys').select('id').where('createdByKeyId', 'is', null).where('kind', '=', 'operator')
      .executeTakeFirstOrThrow()).id;
    for (const k of keys) if (k.kind === 'operator' && k.revokedAt === null && k.id !== adminKeyId) await api.del(`/v1/api-keys/${k.id}`);
    // An operator key that expires soon: still counted now, not once expired.
    const soon = await api.post('/v1/api-keys', { kind: 'operator', expiresAt: new Date(env.clock.now().getTime() + 1000).toISOString() });
    env.clock.advance(2000);
    const r = await api.del(`/v1/api-keys/${adminKeyId}`);
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('last_operator_key');
    expect((await api.get('/v1/settings')).status).toBe(200);
    // With a second live operator key the admin key may go.
    const spare = await api.post('/v1/api-keys', { kind: 'operator' });
    const spareApi = client(env.app, spare.body.key as string);
    expect((await spareApi.del(`/v1/api-keys/${adminKeyId}`)).status).toBe(204);
    expect((await api.get('/v1/settings')).status).toBe(401);
    const last = await spareApi.del(`/v1/api-keys/${spare.body.id}`);
    expect(last.status).toBe(409);
    expect(soon.status).toBe(201);
  });
});

describe.skipIf(TEST_DB !== 'postgres')('revocation across two instances on one PostgreSQL (PGlite: one process only)', () => {
  let second: Runtime;
  let app2: FastifyInstance;
  let pg: TestEnv;
  beforeAll(async () => {
    pg = await createTestEnv();
    second = await startRuntime(pg.config, { clock: pg.clock, log: pino({ level: 'silent' }), withDefaultMetrics: false });
    app2 = await buildApp(second.ctx, createServices(second.ctx));
  });
  afterAll(async () => { await app2?.close(); await second?.close(); await pg?.close(); });

  it('a key revoked through instance A answers 401 on instance B within one second', async () => {
    const a = client(pg.app, pg.operatorKey);
    const created = await a.post('/v1/api-keys', { kind: 'operator', label: 'leaked' });
    const onB = client(app2, created.body.key as string);
    // B has used (and would have cached) the key.
    for (let i = 0; i < 3; i++) expect((await onB.get('/v1/settings')).status).toBe(200);
    expect((await a.del(`/v1/api-keys/${created.body.id}`)).status).toBe(204);
    const revokedAt = Date.now();
    let status = 0;
    while (Date.now() - revokedAt < 1000) {
      status = (await onB.get('/v1/settings')).status;
      if (status === 401) break;
    }
    expect(status).toBe(401);
    expect(Date.now() - revokedAt).toBeLessThan(1000);
  });
});
