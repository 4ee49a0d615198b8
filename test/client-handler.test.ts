// @lethe/client's deletion handler against a real Lethe server (listening on a port): signature,
// stale timestamps, de-duplication, webhook.test, the license double-check, retries, adapters.
import crypto from 'node:crypto';
import http from 'node:http';
import Fastify from 'fastify';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDeletionHandler, createLetheClient, expressAdapter, fastifyAdapter, nodeHttpAdapter,
  type DeletionEvent, type DeletionHandlerOptions,
} from '../packages/client/src/index.ts';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createAppKey, createApplication, createCustomer } from './helpers/fixtures.ts';

let env: TestEnv;
let api: Client;
let baseUrl: string;

beforeAll(async () => {
  env = await createTestEnv({ clockStart: new Date().toISOString() });
  api = client(env.app, env.operatorKey);
  baseUrl = await env.app.listen({ port: 0, host: '127.0.0.1' });
  await env.ctx.db.updateTable('settings').set({ gracePeriodDays: 0 }).where('id', '=', 1).execute();
});
afterAll(async () => env?.close());

async function partner() {
  const a = await createApplication(api);
  return { ...a, key: await createAppKey(api, [a.id]) };
}
async function dueCustomer(appId: string) {
  const c = await createCustomer(api);
  const l = await add(api, c.id, 'licenses', { applicationId: appId });
  expect((await api.post(`/v1/licenses/${l.id}/cancel`)).status).toBe(200);
  return c.id;
}
const caseOf = (customerId: string, applicationId: string) => env.ctx.db.selectFrom('deletionCases').selectAll()
  .where('customerId', '=', customerId).where('applicationId', '=', applicationId).executeTakeFirst();

function signed(secret: string, data: Record<string, unknown>, opts: { type?: string; id?: string; at?: Date } = {}) {
  const id = opts.id ?? `msg_${crypto.randomBytes(16).toString('hex')}`;
  const at = opts.at ?? new Date();
  const body = JSON.stringify({ type: opts.type ?? 'data_deletion.required', timestamp: at.toISOString(), data });
  return {
    body,
    headers: { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(secret).sign(id, at, body) },
  };
}

function handlerFor(p: { id: string; key: string; webhookSecret: string }, extra: Partial<DeletionHandlerOptions> = {}) {
  const calls: DeletionEvent[] = [];
  const handler = createDeletionHandler({
    baseUrl, apiKey: p.key, webhookSecret: p.webhookSecret, retry: { baseDelayMs: 10 },
    deleteCustomerData: async (e) => { calls.push(e); return 'deleted'; },
    ...extra,
  });
  return { handler, calls };
}

describe('createDeletionHandler', () => {
  it('verifies, deletes once, confirms; a redelivery with the same webhook-id is acknowledged without acting', async () => {
    const p = await partner();
    const { handler, calls } = handlerFor(p);
    const customerId = await dueCustomer(p.id);
    const msg = signed(p.webhookSecret, { subscriptionId: customerId, applicationId: p.id, reason: 'grace_expired', requiredSince: new Date().toISOString() });
    const r = await handler.handle(msg.headers, msg.body);
    expect(r).toEqual({ status: 200, body: { ok: true, action: 'deleted' } });
    expect(calls.map((c) => c.subscriptionId)).toEqual([customerId]);
    expect(calls[0]!.webhookId).toBe(msg.headers['webhook-id']);
    expect(await caseOf(customerId, p.id)).toMatchObject({ status: 'confirmed', outcome: 'deleted' });
    const again = await handler.handle(msg.headers, Buffer.from(msg.body));
    expect(again.body.action).toBe('duplicate');
    expect(calls).toHaveLength(1);
  });

  it('refuses a bad signature, a changed body and a stale or future timestamp, without acting', async () => {
    const p = await partner();
    const { handler, calls } = handlerFor(p);
    const customerId = await dueCustomer(p.id);
    const data = { subscriptionId: customerId, applicationId: p.id, reason: 'grace_expired', requiredSince: null };
    const other = `whsec_${crypto.randomBytes(32).toString('base64')}`;
    const cases = [
      signed(other, data),
      { ...signed(p.webhookSecret, data), body: JSON.stringify({ type: 'data_deletion.required', data: { ...data, subscriptionId: crypto.randomUUID() } }) },
      signed(p.webhookSecret, data, { at: new Date(Date.now() - 6 * 60_000) }),
      signed(p.webhookSecret, data, { at: new Date(Date.now() + 6 * 60_000) }),
    ];
    for (const m of cases) {
      const r = await handler.handle(m.headers, m.body);
      expect(r.status).toBe(401);
      expect(r.body.action).toBe('rejected');
    }
    expect((await handler.handle({}, '{}')).status).toBe(401);
    expect(calls).toEqual([]);
    expect((await caseOf(customerId, p.id))!.status).toBe('required');
    // A stricter tolerance is honoured.
    const strict = handlerFor(p, { toleranceSeconds: 30 });
    const minuteOld = signed(p.webhookSecret, data, { at: new Date(Date.now() - 60_000) });
    expect((await strict.handler.handle(minuteOld.headers, minuteOld.body)).status).toBe(401);
    expect(strict.calls).toEqual([]);
  });

  it('acknowledges webhook.test without acting; the secret before a rotation still verifies when both are given', async () => {
    const p = await partner();
    const rotated = (await api.post(`/v1/applications/${p.id}/rotate-secret`)).body.webhookSecret as string;
    const { handler, calls } = handlerFor(p, { webhookSecret: [rotated, p.webhookSecret] });
    const ping = signed(p.webhookSecret, { applicationId: p.id }, { type: 'webhook.test' });
    const r = await handler.handle(ping.headers, ping.body);
    expect(r).toEqual({ status: 200, body: { ok: true, action: 'test' } });
    expect(calls).toEqual([]);
  });

  it('does not delete when the customer holds an active license for the application again', async () => {
    const p = await partner();
    const { handler, calls } = handlerFor(p);
    const c = await createCustomer(api);
    await add(api, c.id, 'licenses', { applicationId: p.id });
    const m = signed(p.webhookSecret, { subscriptionId: c.id, applicationId: p.id, reason: 'grace_expired', requiredSince: null });
    const r = await handler.handle(m.headers, m.body);
    expect(r.body.action).toBe('active_license');
    expect(calls).toEqual([]);
    expect(await env.ctx.db.selectFrom('deletionConfirmations').select('id').where('customerId', '=', c.id).execute()).toEqual([]);
  });

  it('retries transient failures of the confirmation; a failing delete function answers 500 so Lethe redelivers', async () => {
    const p = await partner();
    const customerId = await dueCustomer(p.id);
    let confirmCalls = 0;
    const flaky: typeof fetch = async (input, init) => {
      const req = input instanceof Request ? input : new Request(input, init);
      if (req.method === 'POST' && new URL(req.url).pathname === '/v1/data-deletions/confirmations') {
        confirmCalls++;
        if (confirmCalls === 1) throw new TypeError('fetch failed (simulated network error)');
        if (confirmCalls === 2) return new Response(JSON.stringify({ code: 'unavailable' }), { status: 503, headers: { 'content-type': 'application/problem+json' } });
      }
      return fetch(req);
    };
    let fail = true;
    const calls: string[] = [];
    const handler = createDeletionHandler({
      baseUrl, apiKey: p.key, webhookSecret: p.webhookSecret, fetch: flaky, retry: { baseDelayMs: 5 },
      deleteCustomerData: async (e) => {
        calls.push(e.subscriptionId);
        if (fail) { fail = false; throw new Error('database unavailable'); }
        return 'no_data_held';
      },
    });
    const m = signed(p.webhookSecret, { subscriptionId: customerId, applicationId: p.id, reason: 'grace_expired', requiredSince: null });
    const first = await handler.handle(m.headers, m.body);
    expect(first.status).toBe(500);
    expect((await caseOf(customerId, p.id))!.status).toBe('required');
    const second = await handler.handle(m.headers, m.body);
    expect(second.body.action).toBe('no_data_held');
    expect(confirmCalls).toBe(3);
    expect(calls).toHaveLength(2);
    expect(await caseOf(customerId, p.id)).toMatchObject({ status: 'confirmed', outcome: 'no_data_held' });
  });

  it('pull mode processes every due case of the caller, and the typed client reads the result', async () => {
    const p = await partner();
    const ids = [await dueCustomer(p.id), await dueCustomer(p.id)];
    const { handler, calls } = handlerFor(p);
    expect(await handler.processDueCases()).toMatchObject({ processed: 2, deleted: 2, failed: 0 });
    expect(calls.map((c) => c.subscriptionId).sort()).toEqual([...ids].sort());
    const lethe = createLetheClient({ baseUrl, apiKey: p.key });
    const { data } = await lethe.GET('/v1/data-deletions/confirmations', { params: { query: { limit: 10 } } });
    expect(data!.data.map((c) => c.subscriptionId).sort()).toEqual([...ids].sort());
    expect(await handler.processDueCases()).toMatchObject({ processed: 0 });
  });
});

describe('adapters', () => {
  it('node:http, Fastify and Express-style adapters pass the raw body and answer the core result', async () => {
    const p = await partner();
    const { handler, calls } = handlerFor(p);
    const ids = [await dueCustomer(p.id), await dueCustomer(p.id), await dueCustomer(p.id)];
    const msg = (id: string) => signed(p.webhookSecret, { subscriptionId: id, applicationId: p.id, reason: 'grace_expired', requiredSince: null });

    const server = http.createServer(nodeHttpAdapter(handler));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const m = msg(ids[0]!);
      const r = await fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}/`, { method: 'POST', body: m.body, headers: m.headers });
      expect(r.status).toBe(200);
      expect(await r.json()).toMatchObject({ action: 'deleted' });
    } finally {
      server.close();
    }

    const fastify = Fastify();
    fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (_r, body, done) => done(null, body));
    fastify.post('/hook', fastifyAdapter(handler));
    const m2 = msg(ids[1]!);
    const r2 = await fastify.inject({ method: 'POST', url: '/hook', payload: m2.body, headers: { ...m2.headers, 'content-type': 'application/json' } });
    expect(r2.statusCode).toBe(200);
    expect(r2.json()).toMatchObject({ action: 'deleted' });
    await fastify.close();

    const m3 = msg(ids[2]!);
    const answered = await new Promise<{ status: number; body: unknown }>((resolve) => {
      let status = 0;
      expressAdapter(handler)({ headers: m3.headers, body: Buffer.from(m3.body) }, {
        status: (s: number) => { status = s; return { json: (body: unknown) => resolve({ status, body }) }; },
      });
    });
    expect(answered).toEqual({ status: 200, body: { ok: true, action: 'deleted' } });
    expect(calls.map((c) => c.subscriptionId)).toEqual(ids);
    for (const id of ids) expect((await caseOf(id, p.id))!.status).toBe('confirmed');
  });
});
