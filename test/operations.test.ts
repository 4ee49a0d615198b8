import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS } from '../src/clock.ts';
import { markerPath } from '../src/deployment/guards.ts';
import { claimRun, createBackupScheduler } from '../src/deployment/scheduled-backups.ts';
import { listDatabaseBackups } from '../src/backups/database-backup.ts';
import { startRuntime } from '../src/runtime.ts';
import { enqueueWebhook } from '../src/webhooks/outbox.repo.ts';
import { createApplication, createCustomer } from './helpers/fixtures.ts';
import { TEST_DB, client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';

/** Issue 11: the backup location while serving, pruning of operational tables, outbox gauges, scheduled backups. */
let env: TestEnv;
let api: Client;
beforeAll(async () => {
  env = await createTestEnv({ clockStart: '2026-06-01T08:00:00Z' });
  api = client(env.app, env.operatorKey);
});
afterAll(async () => { await env?.close(); });

describe('the backup location becomes unreachable while serving', () => {
  it('/readyz answers 503 and DELETE answers 503 (nothing deleted, no journal entry); both recover when it is back', async () => {
    const c = await createCustomer(api);
    expect((await api.get('/readyz')).status).toBe(200);
    const marker = markerPath(env.config);
    const moved = `${marker}.away`;
    fs.renameSync(marker, moved);
    try {
      const ready = await api.get('/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body.code).toBe('backup_location_unavailable');
      const del = await api.del(`/v1/customers/${c.id}`);
      expect(del.status).toBe(503);
      expect(del.body.code).toBe('backup_location_unavailable');
      expect((await api.get(`/v1/customers/${c.id}`)).status).toBe(200);
      expect(await env.ctx.db.selectFrom('erasureJournal').selectAll().where('customerId', '=', c.id).execute()).toEqual([]);
      expect((await api.get(`/v1/deletions/${c.id}`)).status).toBe(404);
    } finally {
      fs.renameSync(moved, marker);
    }
    expect((await api.get('/readyz')).status).toBe(200);
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
    const file = fs.readFileSync(path.join(env.config.backupDir, 'erasure-journal.jsonl'), 'utf8');
    expect(file.split('\n').filter((l) => l.includes(c.id))).toHaveLength(1);
    const row = await env.ctx.db.selectFrom('erasureJournal').select('fileAppendedAt').where('customerId', '=', c.id).executeTakeFirstOrThrow();
    expect(row.fileAppendedAt).not.toBeNull();
  });
});

describe('operational tables are pruned; /metrics shows the pending outbox', () => {
  it('delivered/failed webhooks, delivery attempts and job runs older than their retention go; pending webhooks and younger rows stay', async () => {
    const app = await createApplication(api);
    const now = env.clock.now();
    const old = new Date(now.getTime() - 40 * DAY_MS);
    const young = new Date(now.getTime() - 2 * DAY_MS);
    const ids = await env.ctx.db.transaction().execute(async (trx) => ({
      oldDelivered: await enqueueWebhook(trx, { applicationId: app.id, type: 't', data: {}, at: old }),
      oldPending: await enqueueWebhook(trx, { applicationId: app.id, type: 't', data: {}, at: old }),
      youngDelivered: await enqueueWebhook(trx, { applicationId: app.id, type: 't', data: {}, at: young }),
    }));
    await env.ctx.db.updateTable('webhookOutbox').set({ status: 'delivered', deliveredAt: now })
      .where('id', 'in', [ids.oldDelivered, ids.youngDelivered]).execute();
    for (const [outboxId, at] of [[ids.oldDelivered, old], [ids.oldPending, old], [ids.youngDelivered, young]] as const) {
      await env.ctx.db.insertInto('webhookDeliveries').values({ outboxId, applicationId: app.id, attempt: 1, attemptedAt: at, durationMs: 5, statusCode: 500, outcome: 'failed', error: null }).execute();
    }
    await env.ctx.db.insertInto('jobRuns').values([
      { job: 'database-backup', slot: '2026-01-01', instanceId: 'x', startedAt: new Date(now.getTime() - 100 * DAY_MS), finishedAt: null, outcome: 'succeeded' },
      { job: 'database-backup', slot: '2026-05-30', instanceId: 'x', startedAt: young, finishedAt: null, outcome: 'succeeded' },
      // Still running: one whose process died 7 hours in (marked abandoned, kept until it is old), one just started (untouched).
      { job: 'database-backup', slot: 'dead-run', instanceId: 'x', startedAt: new Date(now.getTime() - 7 * 3600_000), finishedAt: null, outcome: 'running' },
      { job: 'database-backup', slot: 'live-run', instanceId: 'x', startedAt: new Date(now.getTime() - 3600_000), finishedAt: null, outcome: 'running' },
    ]).execute();

    const metrics = await api.get('/metrics');
    expect(metrics.raw).toMatch(/^lethe_webhook_outbox_pending 1$/m);
    const age = Number(/^lethe_webhook_outbox_oldest_pending_age_seconds (\S+)$/m.exec(metrics.raw)![1]);
    expect(age).toBeCloseTo(40 * 86400, -1);

    const run = await api.post('/v1/jobs/retention/run');
    expect(run.status).toBe(200);
    expect(run.body.result['operational-tables']).toEqual({ webhookDeliveriesDeleted: 2, webhookOutboxDeleted: 1, jobRunsAbandoned: 1, jobRunsDeleted: 1 });
    const left = (await env.ctx.db.selectFrom('webhookOutbox').select('id').where('applicationId', '=', app.id).execute()).map((r) => r.id).sort();
    expect(left).toEqual([ids.oldPending, ids.youngDelivered].sort());
    expect(await env.ctx.db.selectFrom('webhookDeliveries').select('outboxId').where('applicationId', '=', app.id).execute())
      .toEqual([{ outboxId: ids.youngDelivered }]);
    const runs = await env.ctx.db.selectFrom('jobRuns').select(['slot', 'outcome']).where('job', '=', 'database-backup').orderBy('slot').execute();
    expect(runs).toEqual([{ slot: '2026-05-30', outcome: 'succeeded' }, { slot: 'dead-run', outcome: 'abandoned' }, { slot: 'live-run', outcome: 'running' }]);
  });

  it('retention and scheduled backups are settings (defaults documented), validated', async () => {
    const s = await api.get('/v1/settings');
    expect(s.body).toMatchObject({ databaseBackupEnabled: false, databaseBackupTime: '02:30', webhookLogRetentionDays: 30, jobRunRetentionDays: 90 });
    expect((await api.patch('/v1/settings', { webhookLogRetentionDays: 0 })).status).toBe(400);
    expect((await api.patch('/v1/settings', { databaseBackupTime: '25:00' })).status).toBe(400);
    const p = await api.patch('/v1/settings', { webhookLogRetentionDays: 7, jobRunRetentionDays: 14 });
    expect(p.body).toMatchObject({ webhookLogRetentionDays: 7, jobRunRetentionDays: 14 });
  });

  it('idempotency retention is a setting: default 24 hours, 1..720, validated, audited', async () => {
    expect((await api.get('/v1/settings')).body.idempotencyRetentionHours).toBe(24);
    for (const bad of [0, 721, 1.5, -3, '24', null]) {
      const r = await api.patch('/v1/settings', { idempotencyRetentionHours: bad });
      expect(r.status, String(bad)).toBe(400);
      expect(r.body.code).toBe('validation_failed');
    }
    expect((await api.get('/v1/settings')).body.idempotencyRetentionHours).toBe(24);
    const p = await api.patch('/v1/settings', { idempotencyRetentionHours: 720 });
    expect(p.status).toBe(200);
    expect(p.body.idempotencyRetentionHours).toBe(720);
    const audit = await api.get('/v1/audit-events?limit=500');
    const changed = audit.body.data.filter((e: { type: string; data: { changed?: Record<string, unknown> } }) =>
      e.type === 'settings.updated' && e.data.changed?.idempotencyRetentionHours === 720);
    expect(changed).toHaveLength(1);
    expect((await api.patch('/v1/settings', { idempotencyRetentionHours: 24 })).body.idempotencyRetentionHours).toBe(24);
  });
});

describe('scheduled database backups', () => {
  it('run once per day at the set time, on exactly one instance, audited', async () => {
    await api.patch('/v1/settings', { databaseBackupEnabled: true, databaseBackupTime: '09:00', notificationTimeZone: 'UTC' });
    const before = listDatabaseBackups(env.ctx).length;
    // A second instance on the same database (on PGlite: a second scheduler in this process).
    const second = TEST_DB === 'postgres'
      ? await startRuntime(env.config, { clock: env.clock, log: pino({ level: 'silent' }), withDefaultMetrics: false })
      : null;
    try {
      const a = createBackupScheduler(env.ctx);
      const b = createBackupScheduler(second?.ctx ?? { ...env.ctx, config: { ...env.config, instanceId: 'other' } });
      env.clock.set(new Date('2026-06-01T08:59:00Z'));
      expect(await a.tick()).toEqual({ ran: false, day: null });
      env.clock.set(new Date('2026-06-01T09:00:30Z'));
      const results = await Promise.all([a.tick(), b.tick()]);
      expect(results.filter((r) => r.ran)).toHaveLength(1);
      expect(await a.tick()).toEqual({ ran: false, day: null });
      expect(listDatabaseBackups(env.ctx).length).toBe(before + 1);
      const run = await env.ctx.db.selectFrom('jobRuns').selectAll().where('job', '=', 'database-backup').where('slot', '=', '2026-06-01').executeTakeFirstOrThrow();
      expect(run).toMatchObject({ outcome: 'succeeded', trigger: 'scheduled', actorKeyId: null, error: null });
      expect(run.result).toMatchObject({ backupsCreated: 1, backupsPruned: 0 });
      // Listed by the API with the other runs, as scheduled.
      const listed = await api.get('/v1/job-runs?job=database-backup');
      expect(listed.body.data[0]).toMatchObject({ id: run.id, trigger: 'scheduled', outcome: 'succeeded', result: run.result });
      const audit = await api.get('/v1/audit-events?limit=200');
      expect(audit.body.data.filter((e: { type: string }) => e.type === 'backup.created').length).toBeGreaterThanOrEqual(1);
      // A claim left unfinished by a dead instance is taken over after an hour, not before.
      await env.ctx.db.insertInto('jobRuns').values({ job: 'database-backup', slot: '2026-06-02', instanceId: 'dead', startedAt: new Date('2026-06-02T09:00:00Z'), finishedAt: null, outcome: 'running' }).execute();
      expect(await claimRun(env.ctx.db, 'database-backup', '2026-06-02', 'me', new Date('2026-06-02T09:30:00Z'))).toBe(false);
      expect(await claimRun(env.ctx.db, 'database-backup', '2026-06-02', 'me', new Date('2026-06-02T10:01:00Z'))).toBe(true);
      expect(await env.ctx.db.selectFrom('jobRuns').select(['instanceId', 'outcome']).where('slot', '=', '2026-06-02').executeTakeFirst())
        .toEqual({ instanceId: 'me', outcome: 'running' });
    } finally {
      await second?.close();
    }
  });
});
