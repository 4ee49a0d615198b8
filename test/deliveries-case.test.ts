import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createApplication, createCustomer } from './helpers/fixtures.ts';

let env: TestEnv;
let api: Client;
let receiver: http.Server;
let hook: string;

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
  receiver = http.createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(204).end()); });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  hook = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
});
afterAll(async () => {
  await new Promise((r) => receiver?.close(r));
  await env?.close();
});

describe('GET /v1/applications/{id}/deliveries', () => {
  it('names the deletion case each attempt was about', async () => {
    const app = await createApplication(api, 'partner', hook);
    const customers = [await createCustomer(api), await createCustomer(api)];
    for (const c of customers) {
      await add(api, c.id, 'licenses', { applicationId: app.id });
      expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
    }
    const dispatchOnce = () => env.services.port('webhookDispatcher').dispatchOnce();
    for (let i = 0; i < 20; i++) {
      await dispatchOnce();
      const r = await api.get(`/v1/applications/${app.id}/deliveries`);
      if (r.body.data.length >= 2) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    const cases = await api.get(`/v1/data-deletions?applicationId=${app.id}`);
    const caseOf = new Map<string, string>(cases.body.data.map((k: { id: string; subscriptionId: string }) => [k.id, k.subscriptionId]));
    const deliveries = await api.get(`/v1/applications/${app.id}/deliveries`);
    expect(deliveries.status).toBe(200);
    expect(deliveries.body.data).toHaveLength(2);
    const covered = deliveries.body.data.map((d: { caseId: string; outcome: string }) => {
      expect(d.outcome).toBe('delivered');
      return caseOf.get(d.caseId);
    });
    expect(covered.sort()).toEqual(customers.map((c) => c.id).sort());
  });
});
