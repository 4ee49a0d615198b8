import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { sql } from 'kysely';
import { startRuntime, type Runtime } from '../src/runtime.ts';
import { createServices } from '../src/services.ts';
import { client, createTestEnv, TEST_DB, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createApplication, createCustomer } from './helpers/fixtures.ts';

const DAY = 86_400_000;

async function licensed(api: Client, appId: string, cancel = true) {
  const c = await createCustomer(api);
  const lic = await add(api, c.id, 'licenses', { applicationId: appId });
  if (cancel) expect((await api.post(`/v1/licenses/${lic.id}/cancel`, {})).status).toBe(200);
  return c.id;
}

const runJob = async (api: Client) => {
  const r = await api.post('/v1/jobs/grace-periods/run', {});
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.result as { required: number; customerDeletions: { enabled: boolean; deleted: number; skipped: number; skippedByReason: Record<string, number> } };
};

describe('deleteCustomerWhenGraceEnds', () => {
  let env: TestEnv;
  let api: Client;
  beforeAll(async () => {
    env = await createTestEnv({ clockStart: '2026-07-01T10:00:00Z' });
    api = client(env.app, env.operatorKey);
  });
  afterAll(async () => env?.close());

  it('off by default: the job only moves cases; on: deletes as the system actor, skips the blocked, never the never-licensed', async () => {
    expect((await api.get('/v1/settings')).body.deleteCustomerWhenGraceEnds).toBe(false);
    expect((await api.patch('/v1/settings', { gracePeriodDays: 10 })).status).toBe(200);
    const app = await createApplication(api);
    const app2 = await createApplication(api);
    const gone = await licensed(api, app.id);
    const never = (await createCustomer(api)).id;
    const held = await licensed(api, app.id);
    expect((await api.patch(`/v1/customers/${held}`, { legalHold: true })).status).toBe(200);
    const pending = await licensed(api, app.id);
    await add(api, pending, 'transactions', { amountMinor: 5, currency: 'EUR', status: 'pending' });
    const active = await licensed(api, app.id, false);
    const mixed = await licensed(api, app.id);
    await add(api, mixed, 'licenses', { applicationId: app2.id });
    const early = await licensed(api, app.id);

    env.clock.advance(11 * DAY);
    await licensed(api, app.id).then((id) => { void id; }); // cancelled today: grace runs until day 21
    let r = await runJob(api);
    expect(r.required).toBe(5);
    expect(r.customerDeletions).toEqual({ enabled: false, deleted: 0, skipped: 0, skippedByReason: {} });
    expect((await api.get(`/v1/customers/${gone}`)).status).toBe(200);

    expect((await api.patch('/v1/settings', { deleteCustomerWhenGraceEnds: true })).status).toBe(200);
    const caseBefore = await env.ctx.db.selectFrom('deletionCases').selectAll().where('customerId', '=', gone).executeTakeFirstOrThrow();
    expect(caseBefore).toMatchObject({ status: 'required', reason: 'grace_expired' });
    const outboxBefore = await env.ctx.db.selectFrom('webhookOutbox').select('id').where('caseId', '=', caseBefore.id).execute();
    expect(outboxBefore).toHaveLength(1);

    r = await runJob(api);
    // gone and early (its grace ended too) are deleted; held and pending skipped; never, active, mixed stay.
    expect(r.customerDeletions).toEqual({ enabled: true, deleted: 2, skipped: 2, skippedByReason: { legal_hold: 1, pending_transactions: 1 } });
    for (const id of [gone, early]) expect((await api.get(`/v1/customers/${id}`)).status).toBe(404);
    for (const id of [never, held, pending, active, mixed]) expect((await api.get(`/v1/customers/${id}`)).status, id).toBe(200);

    // The receipt and the audit event name the system actor.
    const receipt = await api.get(`/v1/deletions/${gone}`);
    expect(receipt.body).toMatchObject({ deletedByKeyId: null, deletedBy: 'system:grace-periods' });
    const ev = await env.ctx.db.selectFrom('auditEvents').selectAll().where('type', '=', 'customer.deleted')
      .where('subjectId', '=', gone).executeTakeFirstOrThrow();
    expect(ev.actorKeyId).toBeNull();
    expect(ev.data).toMatchObject({ actor: 'system:grace-periods' });
    // The case that was already required keeps its reason and gets no second notice that day.
    const caseAfter = await env.ctx.db.selectFrom('deletionCases').selectAll().where('id', '=', caseBefore.id).executeTakeFirstOrThrow();
    expect(caseAfter).toMatchObject({ status: 'required', reason: 'grace_expired', lastNotifiedDay: caseBefore.lastNotifiedDay });
    expect(await env.ctx.db.selectFrom('webhookOutbox').select('id').where('caseId', '=', caseBefore.id).execute()).toHaveLength(1);
    // Deleted through the normal service: journaled, redacted, archived.
    expect(await env.ctx.db.selectFrom('erasureJournal').select('id').where('customerId', '=', gone).where('kind', '=', 'deletion').execute()).toHaveLength(1);
    expect((await env.ctx.db.selectFrom('customers').select('redactedAt').where('id', '=', gone).executeTakeFirstOrThrow()).redactedAt).not.toBeNull();

    // Skipped ones are counted on /metrics and retried at the next run.
    const metrics = await env.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/lethe_grace_deletions_skipped_total\{reason="legal_hold"\} 1/);
    expect(metrics.body).toMatch(/lethe_grace_deletions_skipped_total\{reason="pending_transactions"\} 1/);
    expect((await api.patch(`/v1/customers/${held}`, { legalHold: false })).status).toBe(200);
    env.clock.advance(DAY);
    r = await runJob(api);
    expect(r.customerDeletions).toMatchObject({ deleted: 1, skipped: 1 });
    expect((await api.get(`/v1/customers/${held}`)).status).toBe(404);
    // The customer whose license was cancelled on day 11 is still in grace: kept.
    const stillInGrace = await env.ctx.db.selectFrom('deletionCases').select('customerId').where('status', '=', 'grace').execute();
    expect(stillInGrace).toHaveLength(1);
    expect((await api.get(`/v1/customers/${stillInGrace[0]!.customerId}`)).status).toBe(200);
  });
});

describe.skipIf(TEST_DB !== 'postgres')('two instances run the grace-period job at once (PostgreSQL; PGlite is one process)', () => {
  let env: TestEnv;
  let second: Runtime;
  beforeAll(async () => {
    env = await createTestEnv({ clockStart: '2026-08-01T10:00:00Z' });
    second = await startRuntime(env.config, { clock: env.clock, log: pino({ level: 'silent' }), withDefaultMetrics: false });
  });
  afterAll(async () => { await second?.close(); await env?.close(); });

  it('each customer is deleted once', async () => {
    const api = client(env.app, env.operatorKey);
    expect((await api.patch('/v1/settings', { gracePeriodDays: 1, deleteCustomerWhenGraceEnds: true })).status).toBe(200);
    const app = await createApplication(api);
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push(await licensed(api, app.id));
    env.clock.advance(2 * DAY);
    const jobA = env.services.registry.jobs.get('grace-periods')!;
    const jobB = createServices(second.ctx).registry.jobs.get('grace-periods')!;
    const [a, b] = await Promise.all([jobA.run(null), jobB.run(null)]) as Array<{ customerDeletions: { deleted: number } }>;
    expect(a!.customerDeletions.deleted + b!.customerDeletions.deleted).toBe(12);
    const receipts = await sql<{ n: number }>`SELECT count(*)::int AS n FROM deletions WHERE customer_id = ANY(${ids}::uuid[])`.execute(env.ctx.db);
    expect(receipts.rows[0]!.n).toBe(12);
    const events = await sql<{ n: number }>`SELECT count(*)::int AS n FROM audit_events WHERE type = 'customer.deleted'
      AND subject_id = ANY(${ids}::uuid[])`.execute(env.ctx.db);
    expect(events.rows[0]!.n).toBe(12);
    const journal = await sql<{ n: number }>`SELECT count(*)::int AS n FROM erasure_journal WHERE kind = 'deletion' AND customer_id = ANY(${ids}::uuid[])`.execute(env.ctx.db);
    expect(journal.rows[0]!.n).toBe(12);
    for (const id of ids) expect((await api.get(`/v1/customers/${id}`)).status).toBe(404);
  });
});
