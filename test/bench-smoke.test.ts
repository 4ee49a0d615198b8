// The benchmark's floors must keep changing the same rows as the server: one standard customer
// deleted through the API, one by the floor's pgbench script, and what each left in every
// customer-linked table compared; the daily notification pass through the API and its recorded
// statements through psql, from the same state (PostgreSQL only: pgbench and psql need a server);
// and the delete bench's accounting of backends that exit during the floor.
import fs from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureFeed, insertApplications, insertCustomers, insertFeed, type Exec } from '../bench/fixtures.ts';
import { floorScript } from '../bench/floor.ts';
import { backendSnapshot, exitedSinceMs, MASTER_KEY, runPgbench } from '../bench/lib.ts';
import { insertApps, insertDueCases } from '../bench/notify.ts';
import { passEffects, recordDailyPass, runPsql } from '../bench/notify-floor.ts';
import { deletionShape, diffShapes } from '../bench/signature.ts';
import { client, createTestEnv, TEST_DB, type TestEnv } from './helpers/runtime.ts';
import { describeNeeding } from './helpers/tools.ts';

// Without pgbench: listed at the end of the run with its install command; a failure under CI=true.
const suite = TEST_DB === 'postgres' ? describeNeeding('pgbench') : describe.skip;

suite('bench floor', () => {
  let env: TestEnv;
  let c: pg.Client;
  let exec: Exec;
  beforeAll(async () => {
    env = await createTestEnv({ env: { LETHE_MASTER_KEY: MASTER_KEY } });
    c = new pg.Client({ connectionString: env.databaseUrl });
    await c.connect();
    exec = async (text) => c.query(text);
  });
  afterAll(async () => { await c?.end(); await env?.close(); });

  it('changes the same rows as DELETE /v1/customers/{id}', async () => {
    await ensureFeed(exec);
    const ids = await insertFeed(exec, 1, 2);
    await insertCustomers(exec, 1, 2, await insertApplications(exec));
    const api = client(env.app, env.operatorKey);
    expect((await api.del(`/v1/customers/${ids[0]}`)).status).toBe(204);

    await exec(`CREATE SEQUENCE bench_floor_seq START 2`);
    const actor = String((await exec(`SELECT id FROM api_keys ORDER BY created_at LIMIT 1`)).rows[0].id);
    const r = runPgbench(env.databaseUrl!, floorScript(), { transactionsPerClient: 1, clients: 1, defines: { actor } });
    expect(r.failed).toBe(0);
    expect((await api.get(`/v1/customers/${ids[1]}`)).status).toBe(404);

    const feed = (await exec(`SELECT id, ref FROM bench_feed ORDER BY n`)).rows as Array<{ id: string; ref: string }>;
    const server = await deletionShape(exec, feed[0]!.id, feed[0]!.ref);
    const floor = await deletionShape(exec, feed[1]!.id, feed[1]!.ref);
    expect(Object.keys(server).length).toBeGreaterThan(5);
    expect(diffShapes(server, floor)).toEqual([]);
  });

  it('notify floor: the recorded daily-pass statements through psql change the same rows as the pass', async () => {
    const apps = await insertApps(c, 3, () => null);
    await insertDueCases(c, apps.map((a) => a.id), 300);
    const day = '2026-03-02'; // the fake clock's day (UTC)
    // 20 cases already notified today and 10 confirmed: neither may get a webhook.
    await exec(`UPDATE deletion_cases SET last_notified_day = '${day}' WHERE id IN (SELECT id FROM deletion_cases WHERE status = 'required' ORDER BY id LIMIT 20)`);
    await exec(`UPDATE deletion_cases SET status = 'confirmed', confirmed_at = now() WHERE id IN (SELECT id FROM deletion_cases WHERE status = 'required' ORDER BY id DESC LIMIT 10)`);
    const due = Number((await exec(`SELECT count(*) AS n FROM deletion_cases WHERE status = 'required' AND last_notified_day IS DISTINCT FROM '${day}'`)).rows[0].n);
    expect(due).toBeGreaterThanOrEqual(270);
    const notifiedToday = async () => Number((await exec(`SELECT count(*) AS n FROM deletion_cases WHERE last_notified_day = '${day}'`)).rows[0].n);
    const todayBefore = await notifiedToday();
    expect(todayBefore).toBeGreaterThanOrEqual(20);
    await exec(`CREATE TEMP TABLE snap_cases AS SELECT id, last_notified_day, last_notified_at FROM deletion_cases`);
    await exec(`CREATE TEMP TABLE snap_outbox AS SELECT id FROM webhook_outbox`);
    const before = await passEffects(c);

    const statements = await recordDailyPass(env.databaseUrl!, env.clock.now());
    expect(statements.filter((s) => s.includes('INSERT INTO webhook_outbox')).length).toBeGreaterThanOrEqual(2);
    await runPsql(env.databaseUrl!, statements);
    const floor = await passEffects(c);
    expect(floor.outboxRows - before.outboxRows).toBe(due);
    expect(await notifiedToday()).toBe(todayBefore + due);

    // Back to the state before, then the server's pass.
    await exec(`DELETE FROM webhook_outbox WHERE id NOT IN (SELECT id FROM snap_outbox)`);
    await exec(`UPDATE deletion_cases d SET last_notified_day = s.last_notified_day, last_notified_at = s.last_notified_at FROM snap_cases s WHERE s.id = d.id`);
    expect(await passEffects(c)).toEqual(before);
    const r = await client(env.app, env.operatorKey).post('/v1/jobs/deletion-notifications/run');
    expect(r.status).toBe(200);
    expect(await passEffects(c)).toEqual(floor);
  });
  it("the floor's CPU accounting: a backend that exits after the snapshot gives back its CPU, a live one nothing", async () => {
    // The delete bench takes off the server's backends that close while the floor runs (bench/delete.ts).
    const other = new pg.Client({ connectionString: env.databaseUrl });
    await other.connect();
    const pid = Number((await other.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    await other.query('SELECT count(*) FROM generate_series(1, 3000000)'); // CPU worth a few clock ticks
    const database = String((await exec('SELECT current_database() AS d')).rows[0].d);
    const snapshot = (await backendSnapshot(exec, database)).filter((b) => b.pid === pid);
    expect(snapshot).toHaveLength(1);
    expect(snapshot[0]!.cpuMs).toBeGreaterThan(0);
    expect(exitedSinceMs(snapshot)).toBe(0);
    await other.end();
    for (let i = 0; i < 250 && fs.existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 20));
    expect(exitedSinceMs(snapshot)).toBe(snapshot[0]!.cpuMs);
  });
});
