// Issue 4 figures: the daily notification pass over 1,000,000 due cases, and signed webhook
// dispatch from the outbox vs graphile-worker running the same POSTs as jobs.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { Webhook } from 'standardwebhooks';
import {
  createDatabase, log, migrateDatabase, request, ROOT, round, startServer, timed, type GroupResult, type Row,
} from './lib.ts';

export interface NotifyOptions { cases: number; dispatchRows: number }

/** Deliveries in flight, for both Lethe (apps × per-endpoint limit) and the peer (concurrency). */
const DISPATCH_APPS = 4;
const PER_ENDPOINT = 4;
const IN_FLIGHT = DISPATCH_APPS * PER_ENDPOINT;

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
async function insertDueCases(c: pg.Client, appIds: string[], count: number) {
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

async function insertApps(c: pg.Client, count: number, url: (i: number) => string | null) {
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

  // ---- notify_enqueue_1m_s: the daily pass over `cases` due cases, via POST /v1/jobs/.../run.
  {
    const db = await createDatabase('notify');
    const c = new pg.Client({ connectionString: db.url });
    let server: Awaited<ReturnType<typeof startServer>> | undefined;
    try {
      await migrateDatabase({ databaseUrl: db.url });
      await c.connect();
      const apps = await insertApps(c, 10, () => null);
      const fx = await timed(() => insertDueCases(c, apps.map((a) => a.id), o.cases));
      log(`notify: ${o.cases} due cases inserted in ${round(fx.ms / 1000)} s`);
      server = await startServer({ databaseUrl: db.url });
      const srv = server;
      const t = await timed(() => request(srv.baseUrl, 'POST', '/v1/jobs/deletion-notifications/run', {}));
      if (t.value.status !== 200) throw new Error(`notification job: ${t.value.status} ${t.value.body.toString().slice(0, 300)}`);
      const outbox = Number((await c.query(`SELECT count(*) AS n FROM webhook_outbox`)).rows[0].n);
      const notifiedToday = Number((await c.query(`SELECT count(*) AS n FROM deletion_cases WHERE last_notified_day <> ${yesterday}`)).rows[0].n);
      if (outbox !== o.cases || notifiedToday !== o.cases) {
        throw new Error(`notification job enqueued ${outbox} webhooks and marked ${notifiedToday} cases, expected ${o.cases}`);
      }
      numbers.notify_enqueue_1m_s = round(t.ms / 1000, 2);
      rows.push({
        figure: 'notify_enqueue_1m_s', value: numbers.notify_enqueue_1m_s, unit: 's',
        ratio: { value: numbers.notify_enqueue_1m_s, goal: '<= 20 s', met: o.cases >= 1_000_000 ? numbers.notify_enqueue_1m_s <= 20 : null },
        note: `${o.cases} due cases, 10 applications; POST /v1/jobs/deletion-notifications/run`,
      });
      log(`notify: enqueue ${numbers.notify_enqueue_1m_s} s`);
    } finally {
      await server?.stop();
      await c.end().catch(() => {});
      await db.drop();
    }
  }

  // ---- dispatch_per_s vs dispatch_peer_per_s: the same outbox rows, the same receiver.
  {
    const receiver = await startReceiver();
    const db = await createDatabase('dispatch');
    const c = new pg.Client({ connectionString: db.url });
    let server: Awaited<ReturnType<typeof startServer>> | undefined;
    let peer: ReturnType<typeof spawn> | undefined;
    try {
      await migrateDatabase({ databaseUrl: db.url });
      await c.connect();
      const apps = await insertApps(c, DISPATCH_APPS, (i) => `${receiver.url}/hook/${i}`);
      receiver.secrets = apps.map((a) => a.secret);
      await insertDueCases(c, apps.map((a) => a.id), o.dispatchRows);
      const n = o.dispatchRows;
      const delivered = async () => Number((await c.query(`SELECT count(*) AS n FROM webhook_deliveries WHERE outcome = 'delivered'`)).rows[0].n);

      // Lethe: the notification pass enqueues the rows; the dispatcher delivers them.
      server = await startServer({
        databaseUrl: db.url,
        env: { LETHE_DISPATCHER: 'true', LETHE_WEBHOOK_CONCURRENCY_PER_ENDPOINT: String(PER_ENDPOINT) },
      });
      const srv = server;
      receiver.reset('lethe');
      const job = await request(srv.baseUrl, 'POST', '/v1/jobs/deletion-notifications/run', {});
      if (job.status !== 200) throw new Error(`notification job: ${job.status} ${job.body.toString().slice(0, 300)}`);
      const lethe = await waitFor(receiver, async () => (await delivered()) >= n, 'Lethe dispatch');
      await server.stop();
      server = undefined;
      log(`dispatch: Lethe ${round(n / lethe.seconds)}/s`);

      // The peer: graphile-worker, one job per outbox row, the same rows and receiver.
      const { runMigrations } = await import('graphile-worker');
      await runMigrations({ connectionString: db.url, logger: quietLogger(await import('graphile-worker')) });
      await c.query(`SELECT graphile_worker.add_job('deliver', json_build_object('id', id), max_attempts => 6)
        FROM webhook_outbox ORDER BY next_attempt_at, id`);
      receiver.reset('peer');
      peer = spawn(process.execPath, ['bench/peer-worker.ts'], {
        cwd: ROOT, env: { ...process.env, PEER_DATABASE_URL: db.url, PEER_CONCURRENCY: String(IN_FLIGHT) },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      const peerRun = await waitFor(receiver, async () => (await delivered()) >= 2 * n, 'graphile-worker dispatch');
      log(`dispatch: peer ${round(n / peerRun.seconds)}/s`);

      const same = receiver.sameIds();
      if (!same) throw new Error('Lethe and the peer did not POST the same webhook ids');
      if (receiver.badSignatures > 0) throw new Error(`${receiver.badSignatures} deliveries failed signature verification`);
      numbers.dispatch_per_s = round(n / lethe.seconds);
      numbers.dispatch_peer_per_s = round(n / peerRun.seconds);
      const ratio = numbers.dispatch_per_s / numbers.dispatch_peer_per_s;
      rows.push({
        figure: 'dispatch_per_s', value: numbers.dispatch_per_s, unit: '/s',
        peer: { figure: 'dispatch_peer_per_s', value: numbers.dispatch_peer_per_s },
        ratio: { value: round(ratio, 2), goal: '>= 1', met: ratio >= 1 },
        note: `${n} rows, ${DISPATCH_APPS} endpoints x ${PER_ENDPOINT} in flight; signatures verified`,
      });
      rows.push({
        figure: 'dispatch_peer_per_s', value: numbers.dispatch_peer_per_s, unit: '/s',
        note: `graphile-worker, concurrency ${IN_FLIGHT}, same rows (bench/peer-worker.ts)`,
      });
    } finally {
      if (peer && peer.exitCode === null) {
        const exited = new Promise((r) => peer!.once('exit', r));
        peer.kill('SIGTERM');
        const t = setTimeout(() => peer!.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      await server?.stop();
      await c.end().catch(() => {});
      await db.drop();
      await receiver.close();
    }
  }
  commands.push('npm run bench -- --only=notify   # receiver and peer: bench/notify.ts, bench/peer-worker.ts');
  return { rows, numbers, commands };
}

function quietLogger(gw: typeof import('graphile-worker')) {
  return new gw.Logger(() => (level, message) => { if (level === 'error') console.error(message); });
}

/** From the first POST received to `done()`, polled every 50 ms (10 min at most). */
async function waitFor(receiver: Receiver, done: () => Promise<boolean>, what: string) {
  const deadline = Date.now() + 600_000;
  for (;;) {
    if (await done()) break;
    if (Date.now() > deadline) throw new Error(`${what}: not finished in 10 minutes (${receiver.count} received)`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const end = performance.now();
  if (receiver.firstAt === null) throw new Error(`${what}: nothing received`);
  return { seconds: (end - receiver.firstAt) / 1000 };
}

interface Receiver {
  url: string;
  secrets: string[];
  count: number;
  firstAt: number | null;
  badSignatures: number;
  reset(phase: 'lethe' | 'peer'): void;
  sameIds(): boolean;
  close(): Promise<void>;
}

/** A loopback webhook receiver answering 204 at once; verifies a sample of signatures. */
async function startReceiver(): Promise<Receiver> {
  const ids: Record<'lethe' | 'peer', Set<string>> = { lethe: new Set(), peer: new Set() };
  let phase: 'lethe' | 'peer' = 'lethe';
  const verifiers = new Map<number, Webhook>();
  const r: Receiver = {
    url: '', secrets: [], count: 0, firstAt: null, badSignatures: 0,
    reset(p) { phase = p; r.count = 0; r.firstAt = null; },
    sameIds() {
      if (ids.lethe.size !== ids.peer.size) return false;
      for (const id of ids.lethe) if (!ids.peer.has(id)) return false;
      return true;
    },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    r.firstAt ??= performance.now();
    r.count++;
    const id = String(req.headers['webhook-id'] ?? '');
    ids[phase].add(id);
    const sample = r.count <= 50;
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => { if (sample) chunks.push(d); });
    req.on('end', () => {
      if (sample) {
        const app = Number(/\/hook\/(\d+)/.exec(req.url ?? '')?.[1] ?? -1);
        let v = verifiers.get(app);
        if (!v && r.secrets[app]) { v = new Webhook(r.secrets[app]!); verifiers.set(app, v); }
        try {
          // Checks the HMAC over "id.timestamp.body" and the timestamp's freshness.
          v!.verify(Buffer.concat(chunks).toString(), req.headers as Record<string, string>);
        } catch {
          r.badSignatures++;
        }
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return r;
}
