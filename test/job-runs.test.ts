import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isIdle } from '../src/jobs/job-runs.ts';
import type { RetentionTask } from '../src/plugin/registry.ts';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { createAppKey, createApplication, createCustomer } from './helpers/fixtures.ts';

// Every run of a job is recorded (issue 19): POST /v1/jobs/{job}/run and every scheduler, listed by
// GET /v1/jobs and GET /v1/job-runs. The schedulers are built (LETHE_SCHEDULER=true) but never
// started: the test drives their tick with the injected clock.

let env: TestEnv;
let api: Client;
let operatorKeyId: string;

interface Run {
  id: string; job: string; trigger: string; actorKeyId: string | null; instanceId: string; startedAt: string;
  finishedAt: string | null; durationMs: number | null; outcome: string; result: Record<string, unknown> | null; error: string | null;
}

const runs = async (query = ''): Promise<Run[]> => {
  const r = await api.get(`/v1/job-runs${query}`);
  expect(r.status, r.raw).toBe(200);
  return r.body.data as Run[];
};

function task<T extends { name: string }>(name: string): T {
  const t = env.services.background.find((b) => b.name === name);
  if (!t) throw new Error(`no background task ${name}`);
  return t as unknown as T;
}

beforeAll(async () => {
  env = await createTestEnv({ env: { LETHE_SCHEDULER: 'true' } });
  api = client(env.app, env.operatorKey);
  const keys = await api.get('/v1/api-keys');
  operatorKeyId = (keys.body.data as Array<{ id: string; kind: string }>).find((k) => k.kind === 'operator')!.id;
});
afterAll(async () => env?.close());

describe('job runs are recorded', () => {
  it('a manual run is listed with its trigger, actor, instance, outcome and counts (no text)', async () => {
    env.clock.advance(1000);
    const run = await api.post('/v1/jobs/deletion-notifications/run');
    expect(run.status).toBe(200);
    expect(run.body.result).toMatchObject({ enqueued: 0, day: expect.any(String), timeZone: expect.any(String) });
    const [newest] = await runs();
    expect(newest).toMatchObject({
      job: 'deletion-notifications', trigger: 'manual', actorKeyId: operatorKeyId, instanceId: env.config.instanceId,
      startedAt: env.clock.now().toISOString(), finishedAt: env.clock.now().toISOString(), durationMs: 0,
      outcome: 'succeeded', error: null,
    });
    // Counts only: the day and time zone of the response are not stored.
    expect(newest!.result).toEqual({ enqueued: 0 });

    env.clock.advance(1000);
    const retention = await api.post('/v1/jobs/retention/run');
    expect(retention.status).toBe(200);
    const [r] = await runs('?job=retention');
    expect(r).toMatchObject({ job: 'retention', trigger: 'manual', outcome: 'succeeded' });
    // The retention job's result is counts per task: stored as it was answered.
    expect(r!.result).toEqual(retention.body.result);
    expect(r!.result).toHaveProperty('operational-tables.jobRunsDeleted', 0);
  });

  it('scheduled runs (the notification scheduler and the retention scheduler) are listed as scheduled', async () => {
    env.clock.advance(60_000);
    const scheduler = task<{ name: string; tick(): Promise<{ swept: boolean; passDay: string | null }> }>('notification-scheduler');
    // The sweep runs every minute on every instance: one that changed nothing is not kept.
    const sweepsBefore = (await runs('?job=grace-periods')).length;
    const ticked = await scheduler.tick();
    expect(ticked.swept).toBe(true);
    expect(await runs('?job=grace-periods')).toHaveLength(sweepsBefore);
    // One that moved a case out of its grace period is.
    const app = await createApplication(api);
    const customer = await createCustomer(api);
    const lic = await api.post(`/v1/customers/${customer.id}/licenses`, { applicationId: app.id });
    expect(lic.status).toBe(201);
    expect((await api.post(`/v1/licenses/${lic.body.id}/cancel`)).status).toBe(200);
    const graceDays = (await api.get('/v1/settings')).body.gracePeriodDays as number;
    env.clock.advance((graceDays + 1) * 86_400_000);
    expect((await scheduler.tick()).swept).toBe(true);
    const grace = (await runs('?job=grace-periods'))[0];
    expect(grace).toMatchObject({ trigger: 'scheduled', actorKeyId: null, outcome: 'succeeded', startedAt: env.clock.now().toISOString() });
    expect(grace!.result).toMatchObject({ required: 1, notified: 1, customerDeletions: { enabled: false, deleted: 0, skipped: 0 } });
    if (ticked.passDay) {
      expect((await runs('?job=deletion-notifications'))[0]).toMatchObject({ trigger: 'scheduled', actorKeyId: null, outcome: 'succeeded' });
    }

    const retention = task<{ name: string; tick(): Promise<boolean> }>('retention-scheduler');
    env.clock.advance(60_000); // the first run comes a minute after start
    expect(await retention.tick()).toBe(true);
    const r = (await runs('?job=retention'))[0];
    expect(r).toMatchObject({ trigger: 'scheduled', actorKeyId: null, outcome: 'succeeded', startedAt: env.clock.now().toISOString() });
    expect(r!.result).toHaveProperty('idempotency-keys.deleted', 0);
    // Not again the same day.
    env.clock.advance(3600_000);
    expect(await retention.tick()).toBe(false);
  });

  it('an idle run is one with no count above zero; a flag such as customerDeletions.enabled is not work done', () => {
    expect(isIdle({ required: 0, notified: 0, customerDeletions: { enabled: true, deleted: 0, skipped: 0 } })).toBe(true);
    expect(isIdle({ required: 0, notified: 0, customerDeletions: { enabled: true, deleted: 1, skipped: 0 } })).toBe(false);
    expect(isIdle({ required: 2, notified: 2 })).toBe(false);
    expect(isIdle(null)).toBe(true);
  });

  it('a failing job is recorded as failed with an error code, never the message', async () => {
    class LetheTestError extends Error { code = 'ETEST'; }
    Object.defineProperty(LetheTestError.prototype, 'name', { value: 'LetheTestError' });
    const failing: RetentionTask = { name: 'failing-task', run: async () => { throw new LetheTestError('customer alice@example.com broke it'); } };
    const tasks = env.services.registry.retentionTasks as RetentionTask[];
    tasks.push(failing);
    try {
      env.clock.advance(1000);
      const res = await api.post('/v1/jobs/retention/run');
      expect(res.status).toBe(500);
    } finally {
      tasks.splice(tasks.indexOf(failing), 1);
    }
    const [r] = await runs('?job=retention');
    expect(r).toMatchObject({ trigger: 'manual', outcome: 'failed', result: null, error: 'LetheTestError: ETEST', finishedAt: env.clock.now().toISOString() });
    const stored = await env.ctx.db.selectFrom('jobRuns').selectAll().where('id', '=', r!.id).executeTakeFirstOrThrow();
    expect(JSON.stringify(stored)).not.toContain('alice');
    // GET /v1/jobs shows it as retention's last run.
    const jobs = await api.get('/v1/jobs');
    expect(jobs.body.data.find((j: { name: string }) => j.name === 'retention').lastRun).toMatchObject({ id: r!.id, outcome: 'failed' });
  });

  it('GET /v1/jobs: every runnable job with its newest run, and scheduled-only jobs that ran (database-backup)', async () => {
    const before = await api.get('/v1/jobs');
    expect(before.status).toBe(200);
    expect(before.body.data.map((j: { name: string }) => j.name)).toEqual(['deletion-notifications', 'grace-periods', 'retention']);
    expect(before.body.data.every((j: { runnable: boolean; lastRun: unknown }) => j.runnable && j.lastRun)).toBe(true);
    const grace = before.body.data.find((j: { name: string }) => j.name === 'grace-periods');
    expect(grace.lastRun).toEqual((await runs('?job=grace-periods'))[0]);

    await env.ctx.db.insertInto('jobRuns').values({
      job: 'database-backup', slot: '2026-03-01', instanceId: 'dead', startedAt: new Date(env.clock.now().getTime() - 7 * 3600_000), finishedAt: null,
    }).execute();
    const after = await api.get('/v1/jobs');
    const backup = after.body.data.find((j: { name: string }) => j.name === 'database-backup');
    // Still "running" 7 hours after it started: its process died; shown as abandoned.
    expect(backup).toMatchObject({ runnable: false, lastRun: { trigger: 'scheduled', outcome: 'abandoned', finishedAt: null } });
    expect((await api.post('/v1/jobs/database-backup/run')).status).toBe(404);
  });

  it('paginates newest first, filters by job, refuses a forged cursor', async () => {
    for (let i = 0; i < 4; i++) {
      env.clock.advance(1000);
      expect((await api.post('/v1/jobs/grace-periods/run')).status).toBe(200);
    }
    const all = await runs('?limit=500');
    const seen: Run[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { data: Run[]; nextCursor: string | null } } =
        await api.get(`/v1/job-runs?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.data);
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen.map((r) => r.id)).toEqual(all.map((r) => r.id));
    expect(new Set(seen.map((r) => r.id)).size).toBe(seen.length);
    expect(seen.length).toBeGreaterThanOrEqual(9);
    const starts = seen.map((r) => r.startedAt);
    expect([...starts].sort().reverse()).toEqual(starts);

    const grace = await runs('?job=grace-periods&limit=3');
    expect(grace).toHaveLength(3);
    expect(grace.every((r) => r.job === 'grace-periods' && r.trigger === 'manual')).toBe(true);
    expect(grace[0]!.startedAt > grace[2]!.startedAt).toBe(true);
    expect((await api.get('/v1/job-runs?job=nope')).body.data).toEqual([]);
    expect((await api.get('/v1/job-runs?cursor=bm90LWEtY3Vyc29y')).status).toBe(400);
    expect((await api.get('/v1/job-runs?limit=0')).status).toBe(400);
  });

  it('an unknown job or an application key records nothing; application keys get 403', async () => {
    const count = async () => Number((await env.ctx.db.selectFrom('jobRuns').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    const before = await count();
    const app = await createApplication(api);
    const partner = client(env.app, await createAppKey(api, [app.id]));
    for (const [method, url] of [['GET', '/v1/jobs'], ['GET', '/v1/job-runs'], ['POST', '/v1/jobs/retention/run']] as const) {
      const r = await partner.call(method, url, method === 'POST' ? {} : undefined);
      expect(r.status, `${method} ${url}`).toBe(403);
      expect(r.body.code).toBe('forbidden');
    }
    expect((await api.post('/v1/jobs/nope/run')).status).toBe(404);
    expect(await count()).toBe(before);
  });
});
