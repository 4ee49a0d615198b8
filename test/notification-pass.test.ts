import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CasesService } from '../src/notifications/cases.service.ts';
import { createScheduler } from '../src/notifications/scheduler.ts';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createApplication, createAppKey, createCustomer } from './helpers/fixtures.ts';

let env: TestEnv;
let api: Client;
let cases: CasesService;

beforeAll(async () => {
  env = await createTestEnv({ clockStart: '2026-03-02T10:00:00Z' });
  api = client(env.app, env.operatorKey);
  cases = env.services.port('deletionCases');
});
afterAll(async () => env?.close());

async function settings(s: { notificationTime?: string; notificationTimeZone?: string; gracePeriodDays?: number }) {
  await env.ctx.db.updateTable('settings').set(s).where('id', '=', 1).execute();
}

/** A required case (grace period 0), notified at once on the clock's current day. */
async function requiredCase() {
  await settings({ gracePeriodDays: 0 });
  const app = await createApplication(api);
  const c = await createCustomer(api);
  const l = await add(api, c.id, 'licenses', { applicationId: app.id });
  expect((await api.post(`/v1/licenses/${l.id}/cancel`)).status).toBe(200);
  const kase = await env.ctx.db.selectFrom('deletionCases').selectAll().where('customerId', '=', c.id).executeTakeFirstOrThrow();
  expect(kase.status).toBe('required');
  return { app, customer: c, kase };
}

async function sent(caseId: string) {
  const rows = await env.ctx.db.selectFrom('webhookOutbox').selectAll().where('caseId', '=', caseId).orderBy('createdAt').execute();
  return rows;
}

const scheduler = () => createScheduler(env.ctx, {
  expireGracePeriods: () => cases.expireGracePeriods(),
  notifyDue: (opts) => cases.notifyDue(opts),
});

describe('the daily notification pass', () => {
  it('once per local day: a second pass the same day sends nothing, the next day sends again, until confirmed', async () => {
    await settings({ notificationTime: '00:00', notificationTimeZone: 'Europe/Berlin' });
    env.clock.set('2026-03-02T10:00:00Z');
    const { app, customer, kase } = await requiredCase();
    expect(await sent(kase.id)).toHaveLength(1); // notified when it became required (counts for 2026-03-02)

    const run = async () => (await api.post('/v1/jobs/deletion-notifications/run')).body.result as { day: string; enqueued: number };
    expect((await run()).day).toBe('2026-03-02');
    expect(await sent(kase.id)).toHaveLength(1);

    env.clock.set('2026-03-02T22:59:59Z'); // 23:59:59 in Berlin: still the same local day
    await run();
    expect(await sent(kase.id)).toHaveLength(1);

    env.clock.set('2026-03-02T23:00:00Z'); // midnight in Berlin: a new local day
    expect((await run()).day).toBe('2026-03-03');
    const day2 = await sent(kase.id);
    expect(day2).toHaveLength(2);
    expect(day2[1]!.payload).toEqual({
      type: 'data_deletion.required', timestamp: '2026-03-02T23:00:00.000Z',
      data: { subscriptionId: customer.id, applicationId: app.id, reason: 'grace_expired', requiredSince: kase.requiredSince!.toISOString() },
    });
    expect(day2[0]!.id).not.toBe(day2[1]!.id);
    expect(day2[1]!.id).toMatch(/^msg_[0-9a-f]{32}$/); // enqueueWebhook's shape, time-ordered in the pass
    await run();
    await run();
    expect(await sent(kase.id)).toHaveLength(2);

    // Yesterday's delivery failed for good, today's succeeded: neither changes tomorrow's notification.
    await env.ctx.db.updateTable('webhookOutbox').set({ status: 'failed' }).where('id', '=', day2[0]!.id).execute();
    await env.ctx.db.updateTable('webhookOutbox').set({ status: 'delivered' }).where('id', '=', day2[1]!.id).execute();
    env.clock.set('2026-03-04T06:00:00Z');
    await run();
    expect(await sent(kase.id)).toHaveLength(3);

    const key = await createAppKey(api, [app.id]);
    expect((await client(env.app, key).post('/v1/data-deletions/confirmations', { subscriptionId: customer.id })).status).toBe(200);
    env.clock.set('2026-03-05T06:00:00Z');
    await run();
    expect(await sent(kase.id)).toHaveLength(3);
    const audit = await env.ctx.db.selectFrom('auditEvents').select(['data']).where('type', '=', 'deletion_notifications.enqueued').execute();
    expect(audit.length).toBeGreaterThanOrEqual(2);
  });

  it('America/New_York: the scheduler runs the pass at local midnight across the spring-forward day', async () => {
    await settings({ notificationTime: '00:00', notificationTimeZone: 'America/New_York' });
    env.clock.set('2026-03-07T15:00:00Z');
    const { kase } = await requiredCase();
    const s = scheduler();
    env.clock.set('2026-03-08T04:59:59Z'); // 23:59:59 EST on 03-07
    expect((await s.tick()).passDay).toBe('2026-03-07'); // start-up catch-up of today's (already notified) pass
    expect(await sent(kase.id)).toHaveLength(1);
    env.clock.set('2026-03-08T05:00:00Z'); // 00:00 EST on 03-08 (the day clocks spring forward at 02:00)
    expect((await s.tick()).passDay).toBe('2026-03-08');
    expect(await sent(kase.id)).toHaveLength(2);
    env.clock.set('2026-03-08T07:00:00Z'); // 03:00 EDT
    expect((await s.tick()).passDay).toBeNull();
    env.clock.set('2026-03-09T03:59:59Z'); // 23:59:59 EDT on 03-08
    expect((await s.tick()).passDay).toBeNull();
    env.clock.set('2026-03-09T04:00:00Z'); // 00:00 EDT on 03-09: 23 hours after the previous midnight
    expect((await s.tick()).passDay).toBe('2026-03-09');
    expect(await sent(kase.id)).toHaveLength(3);
  });

  it('Europe/Berlin 2026-03-29: a nonexistent 02:30 runs at the first instant after (03:00 CEST), once', async () => {
    await settings({ notificationTime: '02:30', notificationTimeZone: 'Europe/Berlin' });
    env.clock.set('2026-03-28T12:00:00Z');
    const { kase } = await requiredCase();
    const s = scheduler();
    await s.tick(); // 03-28 13:00 local, after 02:30: catch-up pass for 03-28 (already notified)
    expect(await sent(kase.id)).toHaveLength(1);
    env.clock.set('2026-03-29T00:59:59Z'); // 01:59:59 CET
    expect((await s.tick()).passDay).toBeNull();
    env.clock.set('2026-03-29T01:00:00Z'); // 03:00 CEST: the first instant after the gap
    expect((await s.tick()).passDay).toBe('2026-03-29');
    expect(await sent(kase.id)).toHaveLength(2);
    env.clock.set('2026-03-29T01:30:00Z');
    expect((await s.tick()).passDay).toBeNull();
    env.clock.set('2026-03-29T21:59:00Z');
    expect((await s.tick()).passDay).toBeNull();
    expect(await sent(kase.id)).toHaveLength(2);
  });

  it('Europe/Berlin 2026-10-25: 02:30 happens twice, the pass runs at the first and never again that day', async () => {
    await settings({ notificationTime: '02:30', notificationTimeZone: 'Europe/Berlin' });
    env.clock.set('2026-10-24T12:00:00Z');
    const { kase } = await requiredCase();
    const s = scheduler();
    await s.tick();
    env.clock.set('2026-10-25T00:29:59Z'); // 02:29:59 CEST
    expect((await s.tick()).passDay).toBeNull();
    env.clock.set('2026-10-25T00:30:00Z'); // 02:30 CEST, the first 02:30
    expect((await s.tick()).passDay).toBe('2026-10-25');
    expect(await sent(kase.id)).toHaveLength(2);
    env.clock.set('2026-10-25T01:30:00Z'); // 02:30 CET, the second 02:30
    expect((await s.tick()).passDay).toBeNull();
    // A restarted instance catches up at once, and the database makes it send nothing twice.
    const restarted = scheduler();
    expect((await restarted.tick()).passDay).toBe('2026-10-25');
    expect(await sent(kase.id)).toHaveLength(2);
    env.clock.set('2026-10-26T01:30:00Z'); // 02:30 CET on 10-26
    expect((await s.tick()).passDay).toBe('2026-10-26');
    expect(await sent(kase.id)).toHaveLength(3);
  });

  it('at start-up a missed pass is caught up; before the time, it waits', async () => {
    await settings({ notificationTime: '09:00', notificationTimeZone: 'Europe/Berlin' });
    env.clock.set('2026-10-26T12:00:00Z');
    const { kase } = await requiredCase();
    env.clock.set('2026-10-27T07:59:00Z'); // 08:59 CET: down at yesterday's 09:00? today's is still ahead
    expect((await scheduler().tick()).passDay).toBeNull();
    expect(await sent(kase.id)).toHaveLength(1);
    env.clock.set('2026-10-27T11:00:00Z'); // down at 09:00, started at 12:00: the missed pass runs now
    const s = scheduler();
    expect((await s.tick()).passDay).toBe('2026-10-27');
    expect(await sent(kase.id)).toHaveLength(2);
    expect(await s.nextPassAt()).toEqual(new Date('2026-10-28T08:00:00Z'));
  });

  it('the scheduler also sweeps grace periods', async () => {
    await settings({ notificationTime: '00:00', notificationTimeZone: 'UTC', gracePeriodDays: 1 });
    env.clock.set('2026-11-01T10:00:00Z');
    const app = await createApplication(api);
    const c = await createCustomer(api);
    const l = await add(api, c.id, 'licenses', { applicationId: app.id });
    await api.post(`/v1/licenses/${l.id}/cancel`);
    const s = scheduler();
    expect((await s.tick()).swept).toBe(true);
    env.clock.set('2026-11-01T10:00:30Z');
    expect((await s.tick()).swept).toBe(false); // less than a minute of clock time later
    env.clock.set('2026-11-02T10:00:00Z');
    expect((await s.tick()).swept).toBe(true);
    const kase = await env.ctx.db.selectFrom('deletionCases').selectAll().where('customerId', '=', c.id).executeTakeFirstOrThrow();
    expect(kase).toMatchObject({ status: 'required', reason: 'grace_expired', lastNotifiedDay: '2026-11-02' });
    expect(await sent(kase.id)).toHaveLength(1);
  });

  it('start() ticks at once (catch-up) from the background; stop() waits for the tick', async () => {
    await settings({ notificationTime: '00:00', notificationTimeZone: 'UTC' });
    env.clock.set('2026-11-02T12:00:00Z');
    const { kase } = await requiredCase();
    env.clock.set('2026-11-03T08:00:00Z');
    const s = scheduler();
    s.start();
    await s.stop();
    expect(await sent(kase.id)).toHaveLength(2);
  });

  it('a failed pass is retried at the next tick the same day; a failed sweep does not hold up the pass', async () => {
    await settings({ notificationTime: '00:00', notificationTimeZone: 'UTC' });
    env.clock.set('2026-11-03T09:00:00Z');
    let failPass = true;
    const calls: string[] = [];
    const s = createScheduler(env.ctx, {
      expireGracePeriods: async () => { calls.push('sweep'); throw new Error('sweep down'); },
      notifyDue: async (opts) => {
        calls.push(`pass ${opts.day}`);
        if (failPass) throw new Error('database down');
        return cases.notifyDue(opts);
      },
    });
    await expect(s.tick()).rejects.toThrow('database down');
    failPass = false;
    env.clock.set('2026-11-03T09:00:15Z');
    expect(await s.tick()).toEqual({ swept: false, passDay: '2026-11-03' });
    env.clock.set('2026-11-03T09:00:30Z');
    expect((await s.tick()).passDay).toBeNull();
    expect(calls).toEqual(['sweep', 'pass 2026-11-03', 'pass 2026-11-03']);
  });

  it('a disabled endpoint or an application without a URL still gets its notification enqueued (nothing is lost)', async () => {
    await settings({ notificationTime: '00:00', notificationTimeZone: 'UTC' });
    env.clock.set('2026-11-03T10:00:00Z');
    const { app, kase } = await requiredCase();
    await env.ctx.db.updateTable('applications').set({ enabled: false, disabledReason: 'test' }).where('id', '=', app.id).execute();
    env.clock.set('2026-11-04T00:00:00Z');
    await api.post('/v1/jobs/deletion-notifications/run');
    expect(await sent(kase.id)).toHaveLength(2);
  });
});
