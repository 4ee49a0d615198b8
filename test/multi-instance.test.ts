import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import pino from 'pino';
import type { CasesService } from '../src/notifications/cases.service.ts';
import { createServices } from '../src/services.ts';
import { startRuntime, type Runtime } from '../src/runtime.ts';
import { client, createTestEnv, TEST_DB, type TestEnv } from './helpers/runtime.ts';
import { createApplication } from './helpers/fixtures.ts';

// Several instances on one database only exist with PostgreSQL: PGlite is an embedded,
// single-process database, so there is no second instance to race with.
describe.skipIf(TEST_DB !== 'postgres')('many instances on one PostgreSQL (skipped on PGlite: embedded, single process)', () => {
  let env: TestEnv;
  let second: Runtime;
  let a: CasesService;
  let b: CasesService;
  let appId: string;

  beforeAll(async () => {
    env = await createTestEnv({ clockStart: '2026-05-10T10:00:00Z' });
    // A second, independent runtime (own pool, own services) on the same database.
    second = await startRuntime(env.config, { clock: env.clock, log: pino({ level: 'silent' }), withDefaultMetrics: false });
    a = env.services.port('deletionCases');
    b = createServices(second.ctx).port('deletionCases');
    appId = (await createApplication(client(env.app, env.operatorKey))).id;
  });
  afterAll(async () => {
    await second?.close();
    await env?.close();
  });

  async function outboxPerCase(caseIds: string[]) {
    const r = await sql<{ caseId: string; n: string }>`
      SELECT case_id, count(*) AS n FROM webhook_outbox WHERE case_id = ANY(${caseIds}::uuid[]) GROUP BY case_id`.execute(env.ctx.db);
    return r.rows;
  }

  it('two instances run the notification pass concurrently over 1,000 due cases: exactly one webhook per case', async () => {
    const seeded = await sql<{ id: string }>`
      INSERT INTO deletion_cases (customer_id, application_id, status, reason, required_since, last_notified_day, created_at, updated_at)
      SELECT gen_random_uuid(), ${appId}, 'required', 'customer_deleted', ${new Date('2026-05-01T00:00:00Z')}, '2026-05-09', now(), now()
      FROM generate_series(1, 1000)
      RETURNING id`.execute(env.ctx.db);
    const ids = seeded.rows.map((r) => r.id);
    expect(ids).toHaveLength(1000);

    // Small batches so the two instances interleave; four passes at once, two per instance.
    const results = await Promise.all([
      a.notifyDue({ batchSize: 37 }), b.notifyDue({ batchSize: 41 }), a.notifyDue({ batchSize: 53 }), b.notifyDue({ batchSize: 29 }),
    ]);
    expect(results.reduce((n, r) => n + r.enqueued, 0)).toBe(1000);
    expect(results.every((r) => r.day === '2026-05-10')).toBe(true);
    const rows = await outboxPerCase(ids);
    expect(rows).toHaveLength(1000);
    expect(rows.every((r) => Number(r.n) === 1)).toBe(true);

    // Both again, the same day: nothing.
    const again = await Promise.all([a.notifyDue(), b.notifyDue()]);
    expect(again.map((r) => r.enqueued)).toEqual([0, 0]);
    expect((await outboxPerCase(ids)).every((r) => Number(r.n) === 1)).toBe(true);

    // The next day, concurrently again: exactly one more each.
    env.clock.set('2026-05-11T00:00:00Z');
    const next = await Promise.all([b.notifyDue({ batchSize: 100 }), a.notifyDue({ batchSize: 100 })]);
    expect(next.reduce((n, r) => n + r.enqueued, 0)).toBe(1000);
    expect((await outboxPerCase(ids)).every((r) => Number(r.n) === 2)).toBe(true);
  });

  it('two instances sweep 1,000 expired grace periods concurrently: each case required once, notified once, audited once', async () => {
    env.clock.set('2026-06-01T10:00:00Z');
    const seeded = await sql<{ id: string }>`
      INSERT INTO deletion_cases (customer_id, application_id, status, grace_started_at, grace_ends_at, created_at, updated_at)
      SELECT gen_random_uuid(), ${appId}, 'grace', ${new Date('2026-03-01T00:00:00Z')}, ${new Date('2026-05-30T00:00:00Z')}, now(), now()
      FROM generate_series(1, 1000)
      RETURNING id`.execute(env.ctx.db);
    const ids = seeded.rows.map((r) => r.id);
    const results = await Promise.all([a.expireGracePeriods({ batchSize: 64 }), b.expireGracePeriods({ batchSize: 64 })]);
    expect(results.reduce((n, r) => n + r.required, 0)).toBe(1000);
    const rows = await outboxPerCase(ids);
    expect(rows).toHaveLength(1000);
    expect(rows.every((r) => Number(r.n) === 1)).toBe(true);
    const audits = await sql<{ n: string }>`
      SELECT count(*) AS n FROM audit_events WHERE type = 'deletion_case.required' AND subject_id = ANY(${ids}::uuid[])`.execute(env.ctx.db);
    expect(Number(audits.rows[0]!.n)).toBe(1000);
    // The immediate notification was today's: the daily pass adds nothing.
    await Promise.all([a.notifyDue(), b.notifyDue()]);
    expect((await outboxPerCase(ids)).every((r) => Number(r.n) === 1)).toBe(true);
  });
});
