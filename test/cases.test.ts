import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS } from '../src/clock.ts';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createApplication, createCustomer } from './helpers/fixtures.ts';

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv({ clockStart: '2026-03-02T10:00:00Z' });
  api = client(env.app, env.operatorKey);
});
afterAll(async () => env?.close());

async function caseOf(customerId: string, applicationId: string) {
  return env.ctx.db.selectFrom('deletionCases').selectAll()
    .where('customerId', '=', customerId).where('applicationId', '=', applicationId).executeTakeFirst();
}
async function outboxOf(customerId: string, applicationId: string) {
  const c = await caseOf(customerId, applicationId);
  if (!c) return [];
  return env.ctx.db.selectFrom('webhookOutbox').selectAll().where('caseId', '=', c.id).orderBy('createdAt').execute();
}
async function auditTypes(caseId: string) {
  const rows = await env.ctx.db.selectFrom('auditEvents').select('type').where('subjectId', '=', caseId).orderBy('seq').execute();
  return rows.map((r) => r.type);
}
async function setGrace(days: number) {
  await env.ctx.db.updateTable('settings').set({ gracePeriodDays: days }).where('id', '=', 1).execute();
}
const runJob = async (job: string) => {
  const r = await api.post(`/v1/jobs/${job}/run`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.result as Record<string, unknown>;
};
const cancel = async (licenseId: string) => expect((await api.post(`/v1/licenses/${licenseId}/cancel`)).status).toBe(200);

describe('deletion cases', () => {
  it('cancelling the last active license opens a grace case; another active license keeps it closed', async () => {
    await setGrace(90);
    const app = await createApplication(api);
    const c = await createCustomer(api);
    const l1 = await add(api, c.id, 'licenses', { applicationId: app.id });
    const l2 = await add(api, c.id, 'licenses', { applicationId: app.id });
    await cancel(l1.id);
    expect(await caseOf(c.id, app.id)).toBeUndefined();
    const at = env.clock.now();
    await cancel(l2.id);
    const kase = await caseOf(c.id, app.id);
    expect(kase).toMatchObject({ status: 'grace', reason: null, requiredSince: null, lastNotifiedDay: null });
    expect(kase!.graceEndsAt!.getTime()).toBe(at.getTime() + 90 * DAY_MS);
    expect(await auditTypes(kase!.id)).toEqual(['deletion_case.grace_started']);
    expect(await outboxOf(c.id, app.id)).toEqual([]);
    // Cancelling a cancelled license changes nothing.
    await cancel(l2.id);
    expect((await caseOf(c.id, app.id))!.updatedAt).toEqual(kase!.updatedAt);
  });

  it('a 90-day grace period runs over the clock, then the case is required and notified at once', async () => {
    await setGrace(90);
    const app = await createApplication(api);
    const c = await createCustomer(api);
    const l = await add(api, c.id, 'licenses', { applicationId: app.id });
    await cancel(l.id);
    const graceEndsAt = (await caseOf(c.id, app.id))!.graceEndsAt!;

    env.clock.advance(90 * DAY_MS - 1000);
    await runJob('grace-periods');
    expect((await caseOf(c.id, app.id))!.status).toBe('grace');

    env.clock.advance(1000);
    const swept = await runJob('grace-periods');
    expect(swept.required).toBeGreaterThanOrEqual(1);
    const kase = (await caseOf(c.id, app.id))!;
    expect(kase).toMatchObject({ status: 'required', reason: 'grace_expired' });
    expect(kase.requiredSince).toEqual(graceEndsAt);
    expect(kase.lastNotifiedDay).toBe(env.clock.now().toISOString().slice(0, 10));
    const outbox = await outboxOf(c.id, app.id);
    expect(outbox).toHaveLength(1);
    expect(outbox[0]!.id).toMatch(/^msg_[0-9a-f]{32}$/);
    expect(outbox[0]!.applicationId).toBe(app.id);
    expect(outbox[0]!.eventType).toBe('data_deletion.required');
    expect(outbox[0]!.payload).toEqual({
      type: 'data_deletion.required', timestamp: env.clock.now().toISOString(),
      data: { subscriptionId: c.id, applicationId: app.id, reason: 'grace_expired', requiredSince: graceEndsAt.toISOString() },
    });
    expect(await auditTypes(kase.id)).toEqual(['deletion_case.grace_started', 'deletion_case.required']);

    // The immediate notification counts as today's: the daily pass sends nothing more today.
    await runJob('deletion-notifications');
    expect(await outboxOf(c.id, app.id)).toHaveLength(1);
    // A second sweep changes nothing.
    await runJob('grace-periods');
    expect(await outboxOf(c.id, app.id)).toHaveLength(1);
    // SPEC: a new license for a case required because its grace period ended (not yet confirmed)
    // revokes it: the customer came back (test/partner-rules.test.ts checks no notice follows).
    await add(api, c.id, 'licenses', { applicationId: app.id });
    expect((await caseOf(c.id, app.id))!.status).toBe('revoked');
  });

  it('a new license within the grace period revokes the case; a later cancellation opens a fresh grace period', async () => {
    await setGrace(90);
    const app = await createApplication(api);
    const c = await createCustomer(api);
    const l = await add(api, c.id, 'licenses', { applicationId: app.id });
    await cancel(l.id);
    const opened = (await caseOf(c.id, app.id))!;
    env.clock.advance(30 * DAY_MS);
    const l2 = await add(api, c.id, 'licenses', { applicationId: app.id });
    const revoked = (await caseOf(c.id, app.id))!;
    expect(revoked).toMatchObject({ id: opened.id, status: 'revoked' });
    expect(revoked.revokedAt).toEqual(env.clock.now());
    // The old grace end passes: nothing happens to a revoked case.
    env.clock.advance(70 * DAY_MS);
    await runJob('grace-periods');
    expect((await caseOf(c.id, app.id))!.status).toBe('revoked');
    expect(await outboxOf(c.id, app.id)).toEqual([]);

    await cancel(l2.id);
    const reopened = (await caseOf(c.id, app.id))!;
    expect(reopened).toMatchObject({ id: opened.id, status: 'grace', revokedAt: null });
    expect(reopened.graceEndsAt!.getTime()).toBe(env.clock.now().getTime() + 90 * DAY_MS);
    expect(await auditTypes(opened.id)).toEqual(['deletion_case.grace_started', 'deletion_case.revoked', 'deletion_case.grace_started']);
  });

  it('gracePeriodDays 0 makes the case required and notified in the cancelling transaction', async () => {
    await setGrace(0);
    try {
      const app = await createApplication(api);
      const c = await createCustomer(api);
      const l = await add(api, c.id, 'licenses', { applicationId: app.id });
      await cancel(l.id);
      const kase = (await caseOf(c.id, app.id))!;
      expect(kase).toMatchObject({ status: 'required', reason: 'grace_expired' });
      expect(kase.requiredSince).toEqual(env.clock.now());
      expect(await outboxOf(c.id, app.id)).toHaveLength(1);
      expect(await auditTypes(kase.id)).toEqual(['deletion_case.grace_started', 'deletion_case.required']);
    } finally {
      await setGrace(90);
    }
  });

  it('DELETE makes every case of the customer required (customer_deleted) at once and notifies in the same transaction', async () => {
    await setGrace(90);
    const [active, inGrace, longAgo, revoked, confirmed] = await Promise.all([1, 2, 3, 4, 5].map(() => createApplication(api)));
    const c = await createCustomer(api);
    await add(api, c.id, 'licenses', { applicationId: active!.id });
    const lg = await add(api, c.id, 'licenses', { applicationId: inGrace!.id });
    const ll = await add(api, c.id, 'licenses', { applicationId: longAgo!.id });
    const lr = await add(api, c.id, 'licenses', { applicationId: revoked!.id });
    const lc = await add(api, c.id, 'licenses', { applicationId: confirmed!.id });
    await cancel(ll.id);
    await cancel(lc.id);
    env.clock.advance(100 * DAY_MS);
    await runJob('grace-periods'); // longAgo and confirmed: required (grace_expired), notified
    // `confirmed` confirms its deletion.
    const key = await (async () => {
      const r = await api.post('/v1/api-keys', { kind: 'application', applicationIds: [confirmed!.id] });
      return r.body.key as string;
    })();
    expect((await client(env.app, key).post('/v1/data-deletions/confirmations', { subscriptionId: c.id })).status).toBe(200);
    await cancel(lr.id);
    await add(api, c.id, 'licenses', { applicationId: revoked!.id }); // revoked
    await cancel(lg.id); // inGrace: grace
    env.clock.advance(DAY_MS);

    const preview = await api.get(`/v1/customers/${c.id}/deletion-preview`);
    expect(preview.status).toBe(200);
    const expectedApps = [active!.id, inGrace!.id, longAgo!.id, revoked!.id].sort();
    expect(preview.body.deletionCases.applicationIds).toEqual(expectedApps);
    expect(preview.body.applicationsToNotify).toEqual(expect.arrayContaining(expectedApps));

    const before = await env.ctx.db.selectFrom('webhookOutbox').select('id').execute();
    const at = env.clock.now();
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
    const day = at.toISOString().slice(0, 10);
    for (const app of [active!, inGrace!, revoked!]) {
      const kase = (await caseOf(c.id, app.id))!;
      expect(kase, app.id).toMatchObject({ status: 'required', reason: 'customer_deleted', lastNotifiedDay: day });
      expect(kase.requiredSince).toEqual(at);
    }
    // Already required since its grace expired: stays so (first cause kept), notified again today.
    expect(await caseOf(c.id, longAgo!.id)).toMatchObject({ status: 'required', reason: 'grace_expired', lastNotifiedDay: day });
    // Confirmed with no license since: nothing more to delete.
    expect((await caseOf(c.id, confirmed!.id))!.status).toBe('confirmed');

    const after = await env.ctx.db.selectFrom('webhookOutbox').selectAll().where('createdAt', '=', at).execute();
    expect(after.length).toBe((await env.ctx.db.selectFrom('webhookOutbox').select('id').execute()).length - before.length);
    expect(after.map((o) => o.applicationId).sort()).toEqual(expectedApps);
    for (const o of after) {
      expect(o.payload.data).toMatchObject({ subscriptionId: c.id, applicationId: o.applicationId });
    }
    const receipt = await api.get(`/v1/deletions/${c.id}`);
    expect(receipt.body.applicationsNotified).toEqual(expect.arrayContaining(expectedApps));

    // Today's notification has been sent: the pass adds nothing for these cases today.
    await runJob('deletion-notifications');
    for (const app of [active!, inGrace!, longAgo!, revoked!]) expect((await outboxOf(c.id, app.id)).filter((o) => o.createdAt.getTime() === at.getTime())).toHaveLength(1);
    expect((await outboxOf(c.id, confirmed!.id)).filter((o) => o.createdAt.getTime() === at.getTime())).toHaveLength(0);
  });

  it('a license granted after a confirmation makes the case due again at deletion', async () => {
    await setGrace(0);
    try {
      const app = await createApplication(api);
      const c = await createCustomer(api);
      const l = await add(api, c.id, 'licenses', { applicationId: app.id });
      await cancel(l.id);
      const r = await api.post('/v1/api-keys', { kind: 'application', applicationIds: [app.id] });
      expect((await client(env.app, r.body.key).post('/v1/data-deletions/confirmations', { subscriptionId: c.id })).status).toBe(200);
      env.clock.advance(1000);
      await add(api, c.id, 'licenses', { applicationId: app.id });
      expect((await caseOf(c.id, app.id))!.status).toBe('confirmed');
      env.clock.advance(1000);
      expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
      expect(await caseOf(c.id, app.id)).toMatchObject({ status: 'required', reason: 'customer_deleted', confirmedAt: null });
      // The earlier confirmation is still on record.
      const confs = await env.ctx.db.selectFrom('deletionConfirmations').selectAll().where('customerId', '=', c.id).execute();
      expect(confs).toHaveLength(1);
    } finally {
      await setGrace(90);
    }
  });

  it('racing cancellations of the last two licenses open exactly one grace case', async () => {
    await setGrace(90);
    const app = await createApplication(api);
    const c = await createCustomer(api);
    const l1 = await add(api, c.id, 'licenses', { applicationId: app.id });
    const l2 = await add(api, c.id, 'licenses', { applicationId: app.id });
    const [a, b] = await Promise.all([api.post(`/v1/licenses/${l1.id}/cancel`), api.post(`/v1/licenses/${l2.id}/cancel`)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const kase = await caseOf(c.id, app.id);
    expect(kase?.status).toBe('grace');
    expect(await auditTypes(kase!.id)).toEqual(['deletion_case.grace_started']);
  });

  it('the DELETE step commits or rolls back with the deletion', async () => {
    const app = await createApplication(api);
    const c = await createCustomer(api);
    await add(api, c.id, 'licenses', { applicationId: app.id });
    const failing = { name: 'failingForTest', phase: 'after' as const, order: 99, run: async () => { throw new Error('boom'); } };
    env.services.deletionSteps.push(failing);
    try {
      expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(500);
    } finally {
      env.services.deletionSteps.splice(env.services.deletionSteps.indexOf(failing), 1);
    }
    expect(await caseOf(c.id, app.id)).toBeUndefined();
    expect((await api.get(`/v1/customers/${c.id}`)).status).toBe(200);
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
    expect(await caseOf(c.id, app.id)).toMatchObject({ status: 'required', reason: 'customer_deleted' });
    expect(await outboxOf(c.id, app.id)).toHaveLength(1);
  });

  it('a blocked DELETE changes no case and enqueues nothing', async () => {
    const app = await createApplication(api);
    const c = await createCustomer(api);
    await add(api, c.id, 'licenses', { applicationId: app.id });
    expect((await api.patch(`/v1/customers/${c.id}`, { legalHold: true })).status).toBe(200);
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(409);
    expect(await caseOf(c.id, app.id)).toBeUndefined();
  });
});
