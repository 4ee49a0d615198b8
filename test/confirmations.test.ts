import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS } from '../src/clock.ts';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createApplication, createAppKey, createCustomer } from './helpers/fixtures.ts';

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv({ clockStart: '2026-03-02T10:00:00Z' });
  api = client(env.app, env.operatorKey);
});
afterAll(async () => env?.close());

const CONFIRM = '/v1/data-deletions/confirmations';
const UNKNOWN = '00000000-0000-4000-8000-000000000000';

async function setGrace(days: number) {
  await env.ctx.db.updateTable('settings').set({ gracePeriodDays: days }).where('id', '=', 1).execute();
}

/** A customer holding a license of each application, then cancelled: cases open per app. */
async function customerWithCases(apps: Array<{ id: string }>, graceDays: number) {
  await setGrace(graceDays);
  const c = await createCustomer(api);
  for (const app of apps) {
    const l = await add(api, c.id, 'licenses', { applicationId: app.id });
    expect((await api.post(`/v1/licenses/${l.id}/cancel`)).status).toBe(200);
  }
  return c;
}

describe('POST /v1/data-deletions/confirmations', () => {
  it('401 without or with an unknown key; 403 for an operator key', async () => {
    const app = await createApplication(api);
    const c = await customerWithCases([app], 0);
    const none = await client(env.app, null).post(CONFIRM, { subscriptionId: c.id });
    expect(none.status).toBe(401);
    expect(none.headers['content-type']).toContain('application/problem+json');
    expect((await client(env.app, 'lethe_app_not_a_real_key_0000000000').post(CONFIRM, { subscriptionId: c.id })).status).toBe(401);
    const op = await api.post(CONFIRM, { subscriptionId: c.id, applicationId: app.id });
    expect(op.status).toBe(403);
    expect(op.body.code).toBe('forbidden');
  });

  it('400 validation_failed for a malformed body', async () => {
    const app = await createApplication(api);
    const appApi = client(env.app, await createAppKey(api, [app.id]));
    for (const body of [
      {}, { subscriptionId: 'not-a-uuid' }, { subscriptionId: 42 }, { subscriptionId: UNKNOWN, applicationId: 'x' },
      { subscriptionId: UNKNOWN, extra: true }, '{"subscriptionId":', '[]',
    ]) {
      const r = typeof body === 'string'
        ? await appApi.post(CONFIRM, body, { 'content-type': 'application/json' })
        : await appApi.post(CONFIRM, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.code, JSON.stringify(body)).toBe('validation_failed');
    }
  });

  it('400 application_id_required when omitted with a key of several applications; 403 for a foreign applicationId', async () => {
    const [a1, a2, other] = await Promise.all([createApplication(api), createApplication(api), createApplication(api)]);
    const c = await customerWithCases([a1!, a2!, other!], 0);
    const multi = client(env.app, await createAppKey(api, [a1!.id, a2!.id]));
    const r = await multi.post(CONFIRM, { subscriptionId: c.id });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('application_id_required');
    const foreign = await multi.post(CONFIRM, { subscriptionId: c.id, applicationId: other!.id });
    expect(foreign.status).toBe(403);
    expect(foreign.body.code).toBe('forbidden');
    const ok = await multi.post(CONFIRM, { subscriptionId: c.id, applicationId: a2!.id });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ subscriptionId: c.id, applicationId: a2!.id });
  });

  it('404 when the pair has no case', async () => {
    const [app, other] = await Promise.all([createApplication(api), createApplication(api)]);
    const appApi = client(env.app, await createAppKey(api, [app!.id]));
    expect((await appApi.post(CONFIRM, { subscriptionId: UNKNOWN })).status).toBe(404);
    // A case exists, but for another application.
    const c = await customerWithCases([other!], 0);
    const r = await appApi.post(CONFIRM, { subscriptionId: c.id });
    expect(r.status).toBe(404);
    expect(r.body.code).toBe('not_found');
    // A licensed customer without any case.
    const live = await createCustomer(api);
    await add(api, live.id, 'licenses', { applicationId: app!.id });
    expect((await appApi.post(CONFIRM, { subscriptionId: live.id })).status).toBe(404);
  });

  it('409 deletion_not_required inside the grace period and for a revoked case', async () => {
    const app = await createApplication(api);
    const appApi = client(env.app, await createAppKey(api, [app.id]));
    const c = await customerWithCases([app], 90);
    const r = await appApi.post(CONFIRM, { subscriptionId: c.id });
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('deletion_not_required');
    await add(api, c.id, 'licenses', { applicationId: app.id }); // revokes
    const revoked = await appApi.post(CONFIRM, { subscriptionId: c.id });
    expect(revoked.status).toBe(409);
    expect(revoked.body.code).toBe('deletion_not_required');
    const kase = await env.ctx.db.selectFrom('deletionCases').selectAll().where('customerId', '=', c.id).executeTakeFirstOrThrow();
    expect(kase.status).toBe('revoked');
  });

  it('200 the persisted confirmation (key id, audited); a repeat returns the first one; confirmed cases are not notified again', async () => {
    const app = await createApplication(api);
    const issued = await api.post('/v1/api-keys', { kind: 'application', applicationIds: [app.id] });
    const key1 = issued.body.key as string;
    const key2 = await createAppKey(api, [app.id]);
    const c = await customerWithCases([app], 0);
    env.clock.advance(3600_000);
    const first = await client(env.app, key1).post(CONFIRM, { subscriptionId: c.id });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      subscriptionId: c.id, applicationId: app.id, confirmedAt: env.clock.now().toISOString(), reason: 'grace_expired',
    });
    expect(first.body.keyId).toBe(issued.body.id);
    const stored = await env.ctx.db.selectFrom('deletionConfirmations').selectAll().where('id', '=', first.body.id).executeTakeFirstOrThrow();
    expect(stored).toMatchObject({ customerId: c.id, applicationId: app.id, keyId: first.body.keyId });
    const audit = await env.ctx.db.selectFrom('auditEvents').selectAll().where('type', '=', 'deletion_case.confirmed')
      .where('subjectId', '=', first.body.caseId).execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]!.actorKeyId).toBe(first.body.keyId);
    expect(JSON.stringify(audit[0]!.data)).not.toContain(c.email);

    env.clock.advance(3600_000);
    const again = await client(env.app, key2).post(CONFIRM, { subscriptionId: c.id, applicationId: app.id });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(await env.ctx.db.selectFrom('deletionConfirmations').selectAll().where('caseId', '=', first.body.caseId).execute()).toHaveLength(1);

    env.clock.advance(2 * DAY_MS);
    await api.post('/v1/jobs/deletion-notifications/run');
    const outbox = await env.ctx.db.selectFrom('webhookOutbox').select('id').where('caseId', '=', first.body.caseId).execute();
    expect(outbox).toHaveLength(1); // only the one sent when it became required
  });

  it('two concurrent confirmations store one', async () => {
    const app = await createApplication(api);
    const appApi = client(env.app, await createAppKey(api, [app.id]));
    const c = await customerWithCases([app], 0);
    const [x, y] = await Promise.all([appApi.post(CONFIRM, { subscriptionId: c.id }), appApi.post(CONFIRM, { subscriptionId: c.id })]);
    expect([x.status, y.status]).toEqual([200, 200]);
    expect(x.body).toEqual(y.body);
    expect(await env.ctx.db.selectFrom('deletionConfirmations').select('id').where('customerId', '=', c.id).execute()).toHaveLength(1);
  });

  it('after DELETE the case is required at once and confirmable; the confirmation survives the customer', async () => {
    const app = await createApplication(api);
    const appApi = client(env.app, await createAppKey(api, [app.id]));
    await setGrace(90);
    const c = await createCustomer(api);
    await add(api, c.id, 'licenses', { applicationId: app.id });
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
    expect((await api.get(`/v1/customers/${c.id}`)).status).toBe(404);
    const own = await appApi.get(`/v1/data-deletions?status=required`);
    expect(own.body.data.map((d: { subscriptionId: string }) => d.subscriptionId)).toContain(c.id);
    const conf = await appApi.post(CONFIRM, { subscriptionId: c.id });
    expect(conf.status).toBe(200);
    expect(conf.body).toMatchObject({ reason: 'customer_deleted', subscriptionId: c.id });
    // Later, with the customer long gone, the record is still there and a repeat still answers with it.
    env.clock.advance(400 * DAY_MS);
    await api.post('/v1/jobs/retention/run');
    expect((await appApi.post(CONFIRM, { subscriptionId: c.id })).body).toEqual(conf.body);
    const listed = await api.get(`/v1/data-deletions?subscriptionId=${c.id}`);
    expect(listed.body.data).toHaveLength(1);
    expect(listed.body.data[0]).toMatchObject({ status: 'confirmed', confirmedAt: conf.body.confirmedAt, confirmedByKeyId: conf.body.keyId });
  });
});

describe('GET /v1/data-deletions', () => {
  it("an application sees only its own applications' cases", async () => {
    const [mine, theirs] = await Promise.all([createApplication(api), createApplication(api)]);
    const c = await customerWithCases([mine!, theirs!], 0);
    const appApi = client(env.app, await createAppKey(api, [mine!.id]));
    const all: Array<{ applicationId: string }> = [];
    let cursor: string | null = null;
    do {
      const r: { status: number; body: { data: Array<{ applicationId: string }>; nextCursor: string | null } } =
        await appApi.get(`/v1/data-deletions?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      all.push(...r.body.data);
      cursor = r.body.nextCursor;
    } while (cursor);
    expect(all.length).toBeGreaterThan(0);
    expect(all.every((d) => d.applicationId === mine!.id)).toBe(true);
    const bySubscription = await appApi.get(`/v1/data-deletions?subscriptionId=${c.id}`);
    expect(bySubscription.body.data).toHaveLength(1);
    expect(bySubscription.body.data[0].applicationId).toBe(mine!.id);
    const foreign = await appApi.get(`/v1/data-deletions?applicationId=${theirs!.id}`);
    expect(foreign.status).toBe(403);
    expect(JSON.stringify(foreign.body)).not.toContain(c.id);
    expect((await client(env.app, null).get('/v1/data-deletions')).status).toBe(401);
    expect((await appApi.get('/v1/data-deletions?status=bogus')).status).toBe(400);
  });

  it('operators see every case with filters, pagination and the overdue flag; /metrics counts overdue cases', async () => {
    await env.ctx.db.updateTable('settings').set({ overdueAfterDays: 30 }).where('id', '=', 1).execute();
    const [a1, a2] = await Promise.all([createApplication(api), createApplication(api)]);
    const old = await customerWithCases([a1!, a2!], 0);
    env.clock.advance(31 * DAY_MS);
    const fresh = await customerWithCases([a1!], 0);
    const graceC = await customerWithCases([a2!], 90);

    const byApp = await api.get(`/v1/data-deletions?applicationId=${a1!.id}`);
    expect(byApp.status).toBe(200);
    expect(byApp.body.data.map((d: { subscriptionId: string }) => d.subscriptionId).sort()).toEqual([old.id, fresh.id].sort());
    const oldCase = byApp.body.data.find((d: { subscriptionId: string }) => d.subscriptionId === old.id);
    const freshCase = byApp.body.data.find((d: { subscriptionId: string }) => d.subscriptionId === fresh.id);
    expect(oldCase).toMatchObject({ status: 'required', reason: 'grace_expired', overdue: true, applicationId: a1!.id });
    expect(freshCase).toMatchObject({ status: 'required', overdue: false });

    const overdue = await api.get(`/v1/data-deletions?overdue=true&applicationId=${a2!.id}`);
    expect(overdue.body.data.map((d: { subscriptionId: string }) => d.subscriptionId)).toEqual([old.id]);
    const notOverdue = await api.get(`/v1/data-deletions?overdue=false&applicationId=${a2!.id}`);
    expect(notOverdue.body.data.map((d: { subscriptionId: string }) => d.subscriptionId)).toEqual([graceC.id]);
    const inGrace = await api.get(`/v1/data-deletions?status=grace&subscriptionId=${graceC.id}`);
    expect(inGrace.body.data).toHaveLength(1);
    expect(inGrace.body.data[0]).toMatchObject({ status: 'grace', overdue: false, reason: null, requiredSince: null });
    expect(inGrace.body.data[0].graceEndsAt).toBe(new Date(env.clock.now().getTime() + 90 * DAY_MS).toISOString());

    const page1 = await api.get(`/v1/data-deletions?limit=1&applicationId=${a1!.id}`);
    expect(page1.body.data).toHaveLength(1);
    expect(page1.body.nextCursor).toEqual(expect.any(String));
    const page2 = await api.get(`/v1/data-deletions?limit=1&applicationId=${a1!.id}&cursor=${page1.body.nextCursor}`);
    expect(page2.body.data).toHaveLength(1);
    expect(page2.body.data[0].id).not.toBe(page1.body.data[0].id);
    expect(page2.body.nextCursor).toBeNull();

    const all = await env.ctx.db.selectFrom('deletionCases').select(['status', 'requiredSince']).execute();
    const cutoff = env.clock.now().getTime() - 30 * DAY_MS;
    const expected = all.filter((r) => r.status === 'required' && r.requiredSince && r.requiredSince.getTime() < cutoff).length;
    expect(expected).toBeGreaterThanOrEqual(2);
    const metrics = await client(env.app, null).get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.raw).toContain(`lethe_deletion_cases_overdue ${expected}`);
    expect(metrics.raw).toMatch(/lethe_deletion_cases\{state="required"\} \d+/);

    // Confirming an overdue case removes it from the count.
    const key = await createAppKey(api, [a1!.id]);
    expect((await client(env.app, key).post(CONFIRM, { subscriptionId: old.id })).status).toBe(200);
    expect((await client(env.app, null).get('/metrics')).raw).toContain(`lethe_deletion_cases_overdue ${expected - 1}`);
  });
});
