import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createPgDatabase, TEST_DB } from './helpers/runtime.ts';
import { startServer, type ServerProcess } from './helpers/process.ts';

// Two real `node src/main.ts` processes on one PostgreSQL database, each with its scheduler and
// dispatcher running. PGlite is an embedded single-process database: no second process can share it.
describe.skipIf(TEST_DB !== 'postgres')('two server processes on one PostgreSQL (skipped on PGlite: single process)', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterAll(async () => { for (const c of cleanup.reverse()) await c().catch(() => undefined); });

it('a notification pass over 3,000 due cases run by both at once: one webhook per case, each delivered once, by both dispatchers', async () => {
    const db = await createPgDatabase();
    cleanup.push(() => db.drop());
    // A receiver that counts deliveries per case and per webhook-id.
    const perCase = new Map<string, number>();
    const perId = new Map<string, number>();
    // Which process sent each webhook: while a delivery is in flight its row is leased by the
    // sending instance (lease_owner = LETHE_INSTANCE_ID), so the receiver asks the database.
    const perSender = new Map<string, number>();
    let lookups: pg.Pool | null = null;
    const receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        const k = `${body.data.subscriptionId}:${body.data.applicationId}`;
        perCase.set(k, (perCase.get(k) ?? 0) + 1);
        const id = String(req.headers['webhook-id']);
        perId.set(id, (perId.get(id) ?? 0) + 1);
        void (async () => {
          // Each answer takes a second, so the first dispatcher to poll is still busy with what it
          // claimed when the other polls (every second).
          await new Promise((resolve) => setTimeout(resolve, 1000));
          const r = await lookups!.query<{ lease_owner: string | null }>('SELECT lease_owner FROM webhook_outbox WHERE id = $1', [id]);
          const sender = r.rows[0]?.lease_owner ?? 'unknown';
          perSender.set(sender, (perSender.get(sender) ?? 0) + 1);
        })().catch(() => perSender.set('error', (perSender.get('error') ?? 0) + 1)).finally(() => res.writeHead(204).end());
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => receiver.close(r)));
    const hook = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;

    const adminKey = `lethe_op_${crypto.randomBytes(16).toString('hex')}`;
    // Instances share the database, the master key, the backup location (the erasure journal) and
    // the keyring (SPEC "Running it"); start-up guards check the last two.
    const backupDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-mp-backups-'));
    cleanup.push(async () => fs.rmSync(backupDir, { recursive: true, force: true }));
    const keyringDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-mp-keyring-'));
    cleanup.push(async () => fs.rmSync(keyringDir, { recursive: true, force: true }));
    const env = (name: string) => {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `lethe-mp-${name}-`));
      cleanup.push(async () => fs.rmSync(dataDir, { recursive: true, force: true }));
      return {
        DATABASE_URL: db.url, LETHE_DATA_DIR: dataDir, LETHE_BACKUP_DIR: backupDir, LETHE_ADMIN_KEY: adminKey,
        LETHE_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'), LETHE_WEBHOOK_ALLOW_PRIVATE: 'true',
        LETHE_INSTANCE_ID: name, LETHE_RATE_LIMIT_PER_MINUTE: '1000000', LETHE_KEYRING_DIR: keyringDir,
      };
    };
    const servers: ServerProcess[] = [];
    servers.push(await startServer(env('a')));
    cleanup.push(() => servers[0]!.stop());
    const call = async (s: ServerProcess, method: string, url: string, body?: unknown) => {
      const r = await fetch(`${s.url}${url}`, {
        method, body: body === undefined ? undefined : JSON.stringify(body),
        headers: { authorization: `Bearer ${adminKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      });
      return { status: r.status, body: await r.json().catch(() => null) };
    };
    // An endpoint is served by one instance at a time (its leases are exclusive), and one process
    // claims at most 1,024 rows ahead (4 x 256 in flight): 100 partner applications with 30 due
    // cases each, so one process cannot take everything.
    const appIds: string[] = [];
    for (let i = 0; i < 100; i++) {
      const app = await call(servers[0]!, 'POST', '/v1/applications', { name: `partner-${i}`, webhookUrl: `${hook}/${i}` });
      expect(app.status).toBe(201);
      appIds.push(app.body.id);
    }

    // 3,000 cases due (30 per application, in application order), last notified yesterday (UTC, the default zone).
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    cleanup.push(() => c.end());
    lookups = new pg.Pool({ connectionString: db.url, max: 4 });
    cleanup.push(() => lookups!.end());
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    await c.query(`
      INSERT INTO deletion_cases (customer_id, application_id, status, reason, required_since, last_notified_day, created_at, updated_at)
      SELECT gen_random_uuid(), a.id, 'required', 'customer_deleted', now() - interval '3 days', $2, now(), now()
      FROM unnest($1::uuid[]) WITH ORDINALITY a(id, n), generate_series(1, 30) ORDER BY a.n`, [appIds, yesterday]);

    servers.push(await startServer(env('b')));
    cleanup.push(() => servers[1]!.stop());
    // Both schedulers catch up on start; on top, both are asked to run the pass at once, twice.
    const runs = await Promise.all([...servers, ...servers].map((s) => call(s, 'POST', '/v1/jobs/deletion-notifications/run')));
    expect(runs.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    // B's scheduler catch-up (at its start) races the four runs and often does most or all of the
    // day's work. A run never waits for case rows another pass holds (SKIP LOCKED): it answers
    // 0 for them while that pass is still working — under load the catch-up was seen to hold all
    // 3,000 until after every run here had answered. So wait until no pass is running (every run
    // is recorded in job_runs), then check that the passes together enqueued each case once.
    const after = await call(servers[1]!, 'POST', '/v1/jobs/deletion-notifications/run');
    expect(after.status).toBe(200);
    const passesRunning = async () => (await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM job_runs WHERE job = 'deletion-notifications' AND outcome = 'running'`)).rows[0]!.n;
    for (const until = Date.now() + 120_000; await passesRunning() > 0 && Date.now() < until;) await new Promise((r) => setTimeout(r, 200));
    expect(await passesRunning()).toBe(0);
    const passes = (await c.query<{ n: number }>(
      `SELECT (data->>'enqueued')::int AS n FROM audit_events WHERE type = 'deletion_notifications.enqueued'`)).rows.map((r) => r.n);
    const recorded = (await c.query<{ trigger: string; instance_id: string; n: number | null }>(
      `SELECT trigger, instance_id, (result->>'enqueued')::int AS n FROM job_runs WHERE job = 'deletion-notifications' ORDER BY started_at`)).rows;
    const detail = JSON.stringify({ runs: runs.map((r) => r.body?.result?.enqueued), after: after.body?.result?.enqueued, passes, recorded });
    expect(passes.reduce((a, b) => a + b, 0), detail).toBe(3000);
    // The job-run records agree with the audit log.
    expect(recorded.reduce((a, r) => a + (r.n ?? 0), 0), detail).toBe(3000);

    const { rows } = await c.query(`SELECT case_id, count(*)::int AS n FROM webhook_outbox GROUP BY case_id`);
    expect(rows, detail).toHaveLength(3000);
    expect(rows.every((r) => r.n === 1)).toBe(true);

    // Both dispatchers deliver; no row is sent by both.
    // 3,000 one-second answers: a minute or so on an idle machine; generous for a loaded CI run.
    const deadline = Date.now() + 180_000;
    const attributed = () => [...perSender.values()].reduce((a, b) => a + b, 0);
    while (Date.now() < deadline && attributed() < 3000) await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 1000));
    expect(perCase.size, `delivered ${perCase.size} of 3000 before the deadline`).toBe(3000);
    expect([...perCase.values()].every((n) => n === 1)).toBe(true);
    expect([...perId.values()].every((n) => n === 1)).toBe(true);
    // Both dispatchers delivered part of the work, and every delivery came from one of them.
    expect([...perSender.keys()].sort(), JSON.stringify([...perSender])).toEqual(['a', 'b']);
    expect(perSender.get('a')! + perSender.get('b')!).toBe(3000);
    const { rows: states } = await c.query(`SELECT status, count(*)::int AS n FROM webhook_outbox GROUP BY status`);
    expect(states).toEqual([{ status: 'delivered', n: 3000 }]);
  }, 360_000);
});
