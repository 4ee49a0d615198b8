// Issue 4 figures: the daily notification pass over 1,000,000 due cases against the same
// statements run alone through psql (notify_floor_1m_s, bench/notify-floor.ts), and signed webhook
// dispatch from the outbox vs graphile-worker running the same POSTs as jobs (bench/dispatch.ts).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { benchDispatch } from './dispatch.ts';
import {
  checkpoint, cloneDatabase, createDatabase, log, migrateDatabase, pgClient, request, ROOT, round, startServer, timed,
  type BenchDb, type GroupResult, type Row,
} from './lib.ts';
import { passEffects, recordDailyPass, runPsql } from './notify-floor.ts';

export interface NotifyOptions { cases: number; dispatchRows: number; defaultPeer?: boolean }

/** Why the group cannot run yet (null when it can). */
export async function notifyUnavailable(): Promise<string | null> {
  const read = (f: string) => { try { return fs.readFileSync(path.join(ROOT, f), 'utf8'); } catch { return ''; } };
  if (!read('src/notifications/notifications.plugin.ts').includes('deletion-notifications')) {
    return 'the deletion-notifications job (issue 4) is not wired into the server';
  }
  if (!read('src/webhooks/webhooks.plugin.ts').includes('Dispatcher')) return 'the webhook dispatcher (issue 4) is not wired into the server';
  try { await import('graphile-worker'); } catch { return 'graphile-worker is not installed (npm install)'; }
  return null;
}

const yesterday = `to_char((now() AT TIME ZONE 'UTC') - interval '1 day', 'YYYY-MM-DD')`;

/** Cases that are `required` (a customer deletion three days ago), last notified yesterday: due today. */
export async function insertDueCases(c: pg.Client, appIds: string[], count: number) {
  const apps = `ARRAY[${appIds.map((a) => `'${a}'::uuid`).join(',')}]`;
  for (let lo = 1; lo <= count; lo += 250_000) {
    const hi = Math.min(count, lo + 249_999);
    await c.query(`INSERT INTO deletion_cases (customer_id, application_id, status, reason, required_since,
        last_notified_day, last_notified_at, created_at, updated_at)
      SELECT gen_random_uuid(), (${apps})[1 + g % ${appIds.length}], 'required', 'customer_deleted', now() - interval '3 days',
        ${yesterday}, now() - interval '1 day', now() - interval '3 days', now() - interval '1 day'
      FROM generate_series(${lo}, ${hi}) g`);
  }
  await c.query('VACUUM ANALYZE');
}

export async function insertApps(c: pg.Client, count: number, url: (i: number) => string | null) {
  const apps: Array<{ id: string; secret: string }> = [];
  for (let i = 0; i < count; i++) {
    const secret = `whsec_${crypto.randomBytes(24).toString('base64')}`;
    const u = url(i);
    const r = await c.query(`INSERT INTO applications (name, webhook_url, webhook_secret, created_at, updated_at)
      VALUES ($1, $2, $3, now(), now()) RETURNING id`, [`bench-app-${i}`, u, secret]);
    apps.push({ id: String(r.rows[0].id), secret });
  }
  return apps;
}

export async function benchNotify(o: NotifyOptions): Promise<GroupResult> {
  const rows: Row[] = [];
  const numbers: Record<string, number> = {};
  const commands: string[] = [];

  // ---- notify_enqueue_1m_s against notify_floor_1m_s: one fixture (`cases` due cases), copied
  // before either runs, so both start from the same pages, statistics and visibility map.
  {
    const db = await createDatabase('notify');
    let floorDb: BenchDb | undefined;
    let server: Awaited<ReturnType<typeof startServer>> | undefined;
    try {
      await migrateDatabase({ databaseUrl: db.url });
      let c = await pgClient(db.url);
      const apps = await insertApps(c, 10, () => null);
      const fx = await timed(() => insertDueCases(c, apps.map((a) => a.id), o.cases));
      await c.end();
      floorDb = await cloneDatabase(db, 'notify_floor');
      log(`notify: ${o.cases} due cases inserted in ${round(fx.ms / 1000)} s, copied for the floor`);

      // The server: POST /v1/jobs/deletion-notifications/run.
      server = await startServer({ databaseUrl: db.url });
      const srv = server;
      await checkpoint();
      const t = await timed(() => request(srv.baseUrl, 'POST', '/v1/jobs/deletion-notifications/run', {}));
      if (t.value.status !== 200) throw new Error(`notification job: ${t.value.status} ${t.value.body.toString().slice(0, 300)}`);
      await server.stop();
      server = undefined;
      c = await pgClient(db.url);
      await expectNotified(c, o.cases, 'notification job');
      const serverEffects = await passEffects(c);
      await c.end();
      numbers.notify_enqueue_1m_s = round(t.ms / 1000, 2);
      log(`notify: enqueue ${numbers.notify_enqueue_1m_s} s`);

      // The floor: the statements the pass sends, recorded from notifyDue, through psql.
      const statements = await recordDailyPass(floorDb.url, new Date());
      await checkpoint();
      const f = await runPsql(floorDb.url, statements);
      c = await pgClient(floorDb.url);
      await expectNotified(c, o.cases, 'floor');
      const floorEffects = await passEffects(c);
      await c.end();
      if (floorEffects.cases !== serverEffects.cases || floorEffects.outbox !== serverEffects.outbox) {
        throw new Error(`the floor changed other rows than the server's pass: ${JSON.stringify({ serverEffects, floorEffects })}`);
      }
      numbers.notify_floor_1m_s = round(f.ms / 1000, 2);
      numbers.notify_floor_ratio = round(numbers.notify_enqueue_1m_s / numbers.notify_floor_1m_s, 2);
      log(`notify: floor ${numbers.notify_floor_1m_s} s (${statements.length} statements)`);
      rows.push({
        figure: 'notify_enqueue_1m_s', value: numbers.notify_enqueue_1m_s, unit: 's',
        peer: { figure: 'notify_floor_1m_s', value: numbers.notify_floor_1m_s },
        // The issue's ratio: pass / floor, lower is better.
        ratio: { value: numbers.notify_floor_ratio, goal: '<= 1.5', met: numbers.notify_floor_ratio <= 1.5 },
        note: `${o.cases} due cases, 10 applications; POST /v1/jobs/deletion-notifications/run (goal of issue 4: <= 20 s at 1M)`,
      });
      rows.push({
        figure: 'notify_floor_1m_s', value: numbers.notify_floor_1m_s, unit: 's',
        note: `the pass's ${statements.length} statements (recorded from notifyDue) through one psql, copy of the same database; same rows changed`,
      });
      commands.push(f.command);
    } finally {
      await server?.stop();
      await db.drop();
      await floorDb?.drop();
    }
  }

  // ---- dispatch_per_s vs dispatch_peer_per_s (tuned graphile-worker), dispatch_peer_default_per_s.
  const d = await benchDispatch({ rows: o.dispatchRows, defaultPeer: o.defaultPeer ?? true });
  rows.push(...d.rows);
  Object.assign(numbers, d.numbers);
  commands.push('npm run bench -- --only=notify   # receiver and peer: bench/dispatch.ts, bench/peer-worker.ts');
  return { rows, numbers, commands };
}

/** One outbox row per case and every case marked notified (no longer on yesterday). */
async function expectNotified(c: pg.Client, cases: number, who: string) {
  const outbox = Number((await c.query(`SELECT count(*) AS n FROM webhook_outbox`)).rows[0].n);
  const notifiedToday = Number((await c.query(`SELECT count(*) AS n FROM deletion_cases WHERE last_notified_day <> ${yesterday}`)).rows[0].n);
  if (outbox !== cases || notifiedToday !== cases) {
    throw new Error(`${who} enqueued ${outbox} webhooks and marked ${notifiedToday} cases, expected ${cases}`);
  }
}
