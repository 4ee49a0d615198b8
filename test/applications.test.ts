import crypto from 'node:crypto';
import { openWebhookSecret } from '../src/applications/webhook-secrets.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueWebhook } from '../src/webhooks/outbox.repo.ts';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { createAppKey, createApplication } from './helpers/fixtures.ts';

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
});
afterAll(async () => env?.close());

const audit = async (subjectId: string) =>
  ((await api.get(`/v1/audit-events?subjectId=${subjectId}`)).body.data as Array<{ type: string; data: Record<string, unknown>; actorKeyId: string | null }>);

describe('PATCH /v1/applications/{id}', () => {
  it('renames, changes and removes the webhook URL, disables and re-enables, each audited without the URL', async () => {
    const a = await createApplication(api, 'before', 'http://127.0.0.1:9/hook');
    const renamed = await api.patch(`/v1/applications/${a.id}`, { name: 'after', webhookUrl: 'https://hooks.partner.example/v2' });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ id: a.id, name: 'after', webhookUrl: 'https://hooks.partner.example/v2', enabled: true });
    expect(renamed.body.webhookSecret).toBeUndefined();

    const off = await api.patch(`/v1/applications/${a.id}`, { enabled: false });
    expect(off.body).toMatchObject({ enabled: false, disabledReason: 'operator' });
    const on = await api.patch(`/v1/applications/${a.id}`, { enabled: true });
    expect(on.body).toMatchObject({ enabled: true, disabledReason: null, failingSince: null });
    const none = await api.patch(`/v1/applications/${a.id}`, { webhookUrl: null });
    expect(none.body.webhookUrl).toBeNull();

    const events = await audit(a.id);
    expect(events.map((e) => e.type)).toEqual(['application.created', 'application.updated', 'application.disabled', 'application.enabled', 'application.updated']);
    expect(events[1]!.data).toEqual({ fields: ['name', 'webhookUrl'] });
    expect(events[2]!.data).toEqual({ reason: 'operator' });
    expect(events.every((e) => e.actorKeyId !== null)).toBe(true);
    expect(JSON.stringify(events)).not.toContain('hooks.partner.example');
  });

  it('re-enabling sends waiting webhooks at once, even those in a backoff', async () => {
    const a = await createApplication(api, 'resume', 'http://127.0.0.1:9/hook');
    const id = await env.ctx.db.transaction().execute((trx) => enqueueWebhook(trx, {
      applicationId: a.id, type: 'data_deletion.required', at: env.clock.now(),
      data: { subscriptionId: crypto.randomUUID(), applicationId: a.id, reason: 'grace_expired', requiredSince: env.clock.now().toISOString() },
    }));
    await env.ctx.db.updateTable('webhookOutbox').set({ nextAttemptAt: new Date(env.clock.now().getTime() + 3_600_000) }).where('id', '=', id).execute();
    await api.patch(`/v1/applications/${a.id}`, { enabled: false });
    await api.patch(`/v1/applications/${a.id}`, { enabled: true });
    const row = await env.ctx.db.selectFrom('webhookOutbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(row.nextAttemptAt.getTime()).toBe(env.clock.now().getTime());
    expect(row.status).toBe('pending');
  });

  it('refuses bad input with 400 and unknown applications with 404', async () => {
    const a = await createApplication(api);
    for (const body of [{}, { enabled: 'yes' }, { name: '' }, { color: 'red' }, { webhookUrl: 42 }]) {
      const r = await api.patch(`/v1/applications/${a.id}`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.code).toBe('validation_failed');
    }
    for (const webhookUrl of ['ftp://hooks.partner.example/', 'http://u:p@hooks.partner.example/', 'http://a\\@b.example/']) {
      const r = await api.patch(`/v1/applications/${a.id}`, { webhookUrl });
      expect(r.status, webhookUrl).toBe(400);
      expect(r.body.code).toBe('unsafe_webhook_url');
    }
    expect((await api.patch(`/v1/applications/${a.id}`, { webhookUrl: 'not a url' })).body.code).toBe('validation_failed');
    const missing = crypto.randomUUID();
    expect((await api.patch(`/v1/applications/${missing}`, { name: 'x' })).status).toBe(404);
    expect((await api.post(`/v1/applications/${missing}/rotate-secret`)).status).toBe(404);
    expect((await api.get(`/v1/applications/${missing}/deliveries`)).status).toBe(404);
    expect((await api.patch('/v1/applications/not-a-uuid', { name: 'x' })).status).toBe(400);
  });

  it('an application key may change only its own webhookUrl; no key is 401 (self-service: test/application-self-service.test.ts)', async () => {
    const a = await createApplication(api);
    const appApi = client(env.app, await createAppKey(api, [a.id]));
    expect((await appApi.patch(`/v1/applications/${a.id}`, { enabled: false })).status).toBe(403);
    expect((await appApi.patch(`/v1/applications/${a.id}`, { name: 'renamed' })).status).toBe(403);
    const stored = await env.ctx.db.selectFrom('applications').selectAll().where('id', '=', a.id).executeTakeFirstOrThrow();
    expect(stored.enabled).toBe(true);
    expect(stored.name).toBe(a.name);
    const anon = client(env.app, null);
    expect((await anon.patch(`/v1/applications/${a.id}`, { enabled: false })).status).toBe(401);
    expect((await anon.post(`/v1/applications/${a.id}/rotate-secret`)).status).toBe(401);
  });
});

describe('POST /v1/applications/{id}/rotate-secret', () => {
  it('returns a new secret once, keeps the previous one for 24 hours, and audits without either secret', async () => {
    const a = await createApplication(api);
    const r = await api.post(`/v1/applications/${a.id}/rotate-secret`);
    expect(r.status).toBe(200);
    expect(r.body.webhookSecret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(r.body.previousSecretExpiresAt).toBe(new Date(env.clock.now().getTime() + 86_400_000).toISOString());
    const stored = await env.ctx.db.selectFrom('applications').selectAll().where('id', '=', a.id).executeTakeFirstOrThrow();
    // Stored sealed (issue 17), opening to the secrets shown.
    const key = env.ctx.secrets.storedSecretsKey;
    expect(stored.webhookSecret.startsWith('env:')).toBe(true);
    expect(stored.webhookSecret).not.toContain(r.body.webhookSecret.slice(6));
    expect(openWebhookSecret(key, a.id, stored.webhookSecret)).toBe(r.body.webhookSecret);
    expect(openWebhookSecret(key, a.id, stored.previousWebhookSecret!)).toBe(a.webhookSecret);
    const get = await api.get(`/v1/applications/${a.id}`);
    expect(get.body.webhookSecret).toBeUndefined();
    expect(get.body.previousSecretExpiresAt).toBe(r.body.previousSecretExpiresAt);
    const events = await audit(a.id);
    expect(events.map((e) => e.type)).toContain('application.secret_rotated');
    expect(JSON.stringify(events)).not.toContain(r.body.webhookSecret.slice(6, 30));
    expect(JSON.stringify(events)).not.toContain(a.webhookSecret.slice(6, 30));
  });
});

describe('GET /v1/applications/{id}/deliveries', () => {
  it('lists attempts newest first, filters by webhook-id and outcome, and rejects a bad cursor', async () => {
    const a = await createApplication(api);
    const ids = await env.ctx.db.transaction().execute(async (trx) => {
      const out: string[] = [];
      for (let i = 0; i < 3; i++) {
        out.push(await enqueueWebhook(trx, {
          applicationId: a.id, type: 'data_deletion.required', at: env.clock.now(),
          data: { subscriptionId: crypto.randomUUID(), applicationId: a.id, reason: 'customer_deleted', requiredSince: env.clock.now().toISOString() },
        }));
      }
      return out;
    });
    const base = env.clock.now().getTime();
    let k = 0;
    for (const id of ids) {
      for (const outcome of ['failed', 'delivered']) {
        await env.ctx.db.insertInto('webhookDeliveries').values({
          outboxId: id, applicationId: a.id, attempt: outcome === 'failed' ? 1 : 2, attemptedAt: new Date(base + 1000 * k++),
          durationMs: 3, statusCode: outcome === 'failed' ? 500 : 204, outcome, error: outcome === 'failed' ? 'HTTP 500' : null,
        }).execute();
      }
    }
    const all = await api.get(`/v1/applications/${a.id}/deliveries?limit=4`);
    expect(all.status).toBe(200);
    expect(all.body.data).toHaveLength(4);
    const times = all.body.data.map((d: { attemptedAt: string }) => Date.parse(d.attemptedAt));
    expect(times).toEqual([...times].sort((x, y) => y - x));
    expect(all.body.data[0]).toMatchObject({ webhookId: ids[2], eventType: 'data_deletion.required', attempt: 2, outcome: 'delivered', statusCode: 204 });
    const rest = await api.get(`/v1/applications/${a.id}/deliveries?limit=4&cursor=${all.body.nextCursor}`);
    expect(rest.body.data).toHaveLength(2);
    expect(rest.body.nextCursor).toBeNull();

    const one = await api.get(`/v1/applications/${a.id}/deliveries?webhookId=${ids[0]}`);
    expect(one.body.data.map((d: { attempt: number }) => d.attempt)).toEqual([2, 1]);
    const failed = await api.get(`/v1/applications/${a.id}/deliveries?outcome=failed`);
    expect(failed.body.data).toHaveLength(3);
    expect((await api.get(`/v1/applications/${a.id}/deliveries?cursor=garbage`)).status).toBe(400);
    expect((await api.get(`/v1/applications/${a.id}/deliveries?outcome=bogus`)).status).toBe(400);
  });

  it('is documented in the OpenAPI document', async () => {
    const doc = (await client(env.app, null).get('/openapi.json')).body;
    expect(Object.keys(doc.paths['/v1/applications/{id}'])).toContain('patch');
    expect(doc.paths['/v1/applications/{id}/rotate-secret'].post).toBeDefined();
    expect(doc.paths['/v1/applications/{id}/deliveries'].get).toBeDefined();
  });
});
