// SPEC "Application API" and "Webhooks" points of issue 12: confirmation outcome, the
// confirmation history, application self-service, the immediate notice after a deletion, and the
// revocation of a grace_expired case by a new license. Webhooks are really delivered (dispatcher).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openWebhookSecret } from '../src/applications/webhook-secrets.ts';
import { DAY_MS } from '../src/clock.ts';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createAppKey, createApplication, createCustomer } from './helpers/fixtures.ts';
import { startReceiver, type Receiver } from './helpers/receiver.ts';

let env: TestEnv;
let api: Client;
let rx: Receiver;

beforeAll(async () => {
  // Real time: the receiver's deliveries are checked, and the clock only moves forward from here.
  env = await createTestEnv({ clockStart: new Date().toISOString() });
  api = client(env.app, env.operatorKey);
  rx = await startReceiver();
});
afterAll(async () => { await rx?.close(); await env?.close(); });

let n = 0;
async function partner(withUrl = true) {
  const path = `/p/${n++}`;
  const a = await createApplication(api, undefined, withUrl ? rx.url(path) : null);
  const key = await createAppKey(api, [a.id]);
  return { ...a, path, key, api: client(env.app, key) };
}
const setGrace = (days: number) => env.ctx.db.updateTable('settings').set({ gracePeriodDays: days }).where('id', '=', 1).execute();
const dispatch = () => env.services.port('webhookDispatcher').dispatchOnce();
const caseOf = (customerId: string, applicationId: string) => env.ctx.db.selectFrom('deletionCases').selectAll()
  .where('customerId', '=', customerId).where('applicationId', '=', applicationId).executeTakeFirstOrThrow();
const sentFor = (path: string, customerId: string) => rx.to(path).map((r) => JSON.parse(r.body) as { type: string; data: Record<string, string> })
  .filter((b) => b.data.subscriptionId === customerId);
const runJob = async (job: string) => expect((await api.post(`/v1/jobs/${job}/run`)).status).toBe(200);

/** A customer with a license for `app`, cancelled with a zero grace period: a due case, notified. */
async function dueCase(appId: string) {
  await setGrace(0);
  const c = await createCustomer(api);
  const l = await add(api, c.id, 'licenses', { applicationId: appId });
  expect((await api.post(`/v1/licenses/${l.id}/cancel`)).status).toBe(200);
  return c;
}

describe('confirmation outcome', () => {
  it('defaults to deleted, keeps no_data_held as given, rejects an unknown value, and a repeat returns the first', async () => {
    const p = await partner(false);
    const c1 = await dueCase(p.id);
    const c2 = await dueCase(p.id);
    const bad = await p.api.post('/v1/data-deletions/confirmations', { subscriptionId: c1.id, outcome: 'shredded' });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('validation_failed');
    expect((await caseOf(c1.id, p.id)).status).toBe('required');

    const r1 = await p.api.post('/v1/data-deletions/confirmations', { subscriptionId: c1.id });
    expect(r1.status).toBe(200);
    expect(r1.body.outcome).toBe('deleted');
    const r2 = await p.api.post('/v1/data-deletions/confirmations', { subscriptionId: c2.id, outcome: 'no_data_held' });
    expect(r2.body.outcome).toBe('no_data_held');
    expect(await caseOf(c2.id, p.id)).toMatchObject({ status: 'confirmed', outcome: 'no_data_held' });

    // A repeat with another outcome returns the first confirmation, unchanged.
    const again = await p.api.post('/v1/data-deletions/confirmations', { subscriptionId: c2.id, outcome: 'deleted' });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(r2.body);
    const rows = await env.ctx.db.selectFrom('deletionConfirmations').selectAll().where('customerId', '=', c2.id).execute();
    expect(rows.map((r) => r.outcome)).toEqual(['no_data_held']);
    const cases = (await p.api.get(`/v1/data-deletions?subscriptionId=${c2.id}`)).body.data;
    expect(cases[0]).toMatchObject({ status: 'confirmed', outcome: 'no_data_held' });
  });
});

describe('confirmation history', () => {
  it('is append-only, survives a reopened case, pages oldest first, and an application sees only its own', async () => {
    const p = await partner(false);
    const other = await partner(false);
    const c = await dueCase(p.id);
    const foreign = await dueCase(other.id);
    const first = (await p.api.post('/v1/data-deletions/confirmations', { subscriptionId: c.id })).body;
    await other.api.post('/v1/data-deletions/confirmations', { subscriptionId: foreign.id, outcome: 'no_data_held' });
    // The customer comes back and leaves again: the case reopens, becomes due, is confirmed again.
    env.clock.advance(1000);
    const l = await add(api, c.id, 'licenses', { applicationId: p.id });
    expect((await api.post(`/v1/licenses/${l.id}/cancel`)).status).toBe(200);
    expect((await caseOf(c.id, p.id)).status).toBe('required');
    env.clock.advance(1000);
    const second = (await p.api.post('/v1/data-deletions/confirmations', { subscriptionId: c.id, outcome: 'no_data_held' })).body;
    expect(second.id).not.toBe(first.id);

    const mine = await p.api.get('/v1/data-deletions/confirmations');
    expect(mine.status).toBe(200);
    expect(mine.body.data.map((x: { id: string }) => x.id)).toEqual([first.id, second.id]);
    expect(mine.body.data.map((x: { outcome: string }) => x.outcome)).toEqual(['deleted', 'no_data_held']);
    expect(mine.raw).not.toContain(foreign.id);
    // Paginated: one at a time, oldest first, the cursor ends.
    const page1 = await p.api.get('/v1/data-deletions/confirmations?limit=1');
    expect(page1.body.data[0].id).toBe(first.id);
    const page2 = await p.api.get(`/v1/data-deletions/confirmations?limit=1&cursor=${page1.body.nextCursor}`);
    expect(page2.body.data[0].id).toBe(second.id);
    expect(page2.body.nextCursor).toBeNull();
    // Another application's id: 403; another application's customer: nothing.
    expect((await p.api.get(`/v1/data-deletions/confirmations?applicationId=${other.id}`)).status).toBe(403);
    expect((await p.api.get(`/v1/data-deletions/confirmations?subscriptionId=${foreign.id}`)).body.data).toEqual([]);
    // Operators see all, with filters.
    const byApp = await api.get(`/v1/data-deletions/confirmations?applicationId=${other.id}`);
    expect(byApp.body.data.map((x: { subscriptionId: string }) => x.subscriptionId)).toEqual([foreign.id]);
    const bySub = await api.get(`/v1/data-deletions/confirmations?subscriptionId=${c.id}`);
    expect(bySub.body.data.map((x: { id: string }) => x.id)).toEqual([first.id, second.id]);
    const all = await api.get('/v1/data-deletions/confirmations?limit=500');
    const times = all.body.data.map((x: { confirmedAt: string }) => x.confirmedAt);
    expect([...times].sort()).toEqual(times);
    expect(all.body.data.length).toBeGreaterThanOrEqual(3);
    expect((await api.get('/v1/data-deletions/confirmations?cursor=nope')).status).toBe(400);
  });
});

describe('application self-service', () => {
  it('an application reads and changes its own endpoint, rotates its secret, reads its deliveries; 403 for any other id', async () => {
    const p = await partner(false);
    const other = await partner(false);
    const got = await p.api.get(`/v1/applications/${p.id}`);
    expect(got.status).toBe(200);
    expect(got.body.webhookUrl).toBeNull();
    expect(got.body.webhookSecret).toBeUndefined();

    const patched = await p.api.patch(`/v1/applications/${p.id}`, { webhookUrl: rx.url(p.path) });
    expect(patched.status).toBe(200);
    const stored = await env.ctx.db.selectFrom('applications').selectAll().where('id', '=', p.id).executeTakeFirstOrThrow();
    expect(stored.webhookUrl).toBe(rx.url(p.path));
    expect((await p.api.patch(`/v1/applications/${p.id}`, { webhookUrl: 'ftp://x' })).status).toBe(400);

    const rotated = await p.api.post(`/v1/applications/${p.id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.webhookSecret).toMatch(/^whsec_/);
    expect(rotated.body.webhookSecret).not.toBe(p.webhookSecret);

    // A due case is delivered to the new URL, signed; the application reads its delivery log.
    const c = await dueCase(p.id);
    await dispatch();
    expect(sentFor(p.path, c.id)).toHaveLength(1);
    const log = await p.api.get(`/v1/applications/${p.id}/deliveries`);
    expect(log.status).toBe(200);
    expect(log.body.data[0]).toMatchObject({ outcome: 'delivered', eventType: 'data_deletion.required' });

    const unknown = '00000000-0000-4000-8000-000000000000';
    for (const id of [other.id, unknown]) {
      expect((await p.api.get(`/v1/applications/${id}`)).status).toBe(403);
      expect((await p.api.patch(`/v1/applications/${id}`, { webhookUrl: rx.url('/evil') })).status).toBe(403);
      expect((await p.api.post(`/v1/applications/${id}/rotate-secret`)).status).toBe(403);
      expect((await p.api.get(`/v1/applications/${id}/deliveries`)).status).toBe(403);
    }
    const untouched = await env.ctx.db.selectFrom('applications').selectAll().where('id', '=', other.id).executeTakeFirstOrThrow();
    expect(untouched.webhookUrl).toBeNull();
    // Stored sealed (issue 17): it still opens to the secret the application was given.
    expect(openWebhookSecret(env.ctx.secrets.storedSecretsKey, other.id, untouched.webhookSecret)).toBe(other.webhookSecret);
    // The list of all applications stays an operator's.
    expect((await p.api.get('/v1/applications')).status).toBe(403);
    expect((await api.get(`/v1/applications/${unknown}`)).status).toBe(404);
  });
});

describe('notices', () => {
  it('a case made due by a customer deletion is notified at once, even if notified earlier that day', async () => {
    const p = await partner(true);
    const c = await dueCase(p.id);
    await dispatch();
    expect(sentFor(p.path, c.id).map((b) => b.data.reason)).toEqual(['grace_expired']);
    // Confirmed, licensed again, then deleted, all the same day: the deletion makes the case due again.
    expect((await p.api.post('/v1/data-deletions/confirmations', { subscriptionId: c.id })).status).toBe(200);
    env.clock.advance(1000);
    await add(api, c.id, 'licenses', { applicationId: p.id });
    env.clock.advance(1000);
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
    expect(await caseOf(c.id, p.id)).toMatchObject({ status: 'required', reason: 'customer_deleted' });
    await dispatch();
    expect(sentFor(p.path, c.id).map((b) => b.data.reason)).toEqual(['grace_expired', 'customer_deleted']);
    // Still once a day from then on: the pass adds nothing today.
    await runJob('deletion-notifications');
    await dispatch();
    expect(sentFor(p.path, c.id)).toHaveLength(2);
  });

  it('a new license for a required grace_expired case revokes it: no further notices, confirmation refused', async () => {
    const p = await partner(true);
    const c = await dueCase(p.id);
    await dispatch();
    expect(sentFor(p.path, c.id)).toHaveLength(1);
    env.clock.advance(1000);
    await add(api, c.id, 'licenses', { applicationId: p.id });
    const kase = await caseOf(c.id, p.id);
    expect(kase.status).toBe('revoked');
    const types = (await env.ctx.db.selectFrom('auditEvents').select('type').where('subjectId', '=', kase.id).orderBy('seq').execute()).map((r) => r.type);
    expect(types.at(-1)).toBe('deletion_case.revoked');
    // Next days' passes send nothing for it.
    for (let d = 0; d < 2; d++) {
      env.clock.advance(DAY_MS);
      await runJob('deletion-notifications');
      await dispatch();
    }
    expect(sentFor(p.path, c.id)).toHaveLength(1);
    const r = await p.api.post('/v1/data-deletions/confirmations', { subscriptionId: c.id });
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('deletion_not_required');
    // A control: a case required by the customer's deletion is not revoked (nothing can license a deleted customer).
    const d = await dueCase(p.id);
    expect((await api.del(`/v1/customers/${d.id}`)).status).toBe(204);
    expect((await caseOf(d.id, p.id)).status).toBe('required');
  });
});

describe('erasure journal', () => {
  it('records a confirmation\'s outcome, and a restore\'s replay keeps it', async () => {
    const journal = await import('../src/backups/erasure-journal.ts');
    const p = await partner(false);
    const c = await dueCase(p.id);
    const conf = (await p.api.post('/v1/data-deletions/confirmations', { subscriptionId: c.id, outcome: 'no_data_held' })).body;
    const row = await env.ctx.db.selectFrom('erasureJournal').selectAll().where('id', '=', conf.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ kind: 'confirmation', outcome: 'no_data_held' });
    const entry = journal.readFile(env.config).find((e) => e.id === conf.id);
    expect(entry?.outcome).toBe('no_data_held');
    // As after restoring a backup taken before the confirmation: the row is gone, the case required again.
    await env.ctx.db.deleteFrom('deletionConfirmations').where('id', '=', conf.id).execute();
    await env.ctx.db.updateTable('deletionCases').set({ status: 'required', confirmedAt: null, confirmedByKeyId: null, outcome: null })
      .where('customerId', '=', c.id).where('applicationId', '=', p.id).execute();
    const r = await env.ctx.db.transaction().execute((trx) => journal.reapplyConfirmation(trx, entry!));
    expect(r.outcome).toBe('applied');
    expect(await caseOf(c.id, p.id)).toMatchObject({ status: 'confirmed', outcome: 'no_data_held' });
    const replayed = await env.ctx.db.selectFrom('deletionConfirmations').selectAll().where('id', '=', conf.id).executeTakeFirstOrThrow();
    expect(replayed.outcome).toBe('no_data_held');
  });
});
