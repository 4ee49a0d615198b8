import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { createApplication, createCustomer, populate } from './helpers/fixtures.ts';

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
});
afterAll(async () => env?.close());

describe('many deletions at once', () => {
  it('all succeed, each deletion\'s audit events are contiguous and end with customer.deleted, the chain verifies', async () => {
    const app = await createApplication(api);
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const c = await createCustomer(api);
      await populate(api, c.id, [app.id]);
      ids.push(c.id);
    }
    const before = await env.ctx.db.selectFrom('auditEvents').select(({ fn }) => fn.max('seq').as('max')).executeTakeFirstOrThrow();
    // Meanwhile the daily pass and the grace sweep run too: they share the audit chain and the cases.
    const [deletes] = await Promise.all([
      Promise.all(ids.map((id) => api.del(`/v1/customers/${id}`))),
      api.post('/v1/jobs/deletion-notifications/run'),
      api.post('/v1/jobs/grace-periods/run'),
    ]);
    expect(deletes.map((r) => r.status)).toEqual(ids.map(() => 204));

    const verify = await api.get('/v1/audit-events/verify');
    expect(verify.body.valid).toBe(true);
    const events = await env.ctx.db.selectFrom('auditEvents').select(['seq', 'id', 'type', 'subjectId', 'hash', 'data']).orderBy('seq').execute();
    for (const id of ids) {
      const receipt = await api.get(`/v1/deletions/${id}`);
      expect(receipt.status).toBe(200);
      const deleted = events.find((e) => e.type === 'customer.deleted' && e.subjectId === id)!;
      expect(receipt.body.auditEventId).toBe(deleted.id);
      expect(receipt.body.auditHash).toBe(deleted.hash);
      // The deletion's own events (archive, case, customer.deleted) are contiguous and end with customer.deleted.
      const refers = (e: (typeof events)[number]) => {
        const d = e.data as { customerId?: string; subscriptionId?: string };
        return e.subjectId === id || d.customerId === id || d.subscriptionId === id;
      };
      const seqs = events.filter((e) => Number(e.seq) > Number(before.max ?? 0) && refers(e)).map((e) => Number(e.seq));
      expect(seqs.length).toBeGreaterThanOrEqual(3);
      expect(Math.max(...seqs) - Math.min(...seqs)).toBe(seqs.length - 1);
      expect(Number(deleted.seq)).toBe(Math.max(...seqs));
    }
  });
});
