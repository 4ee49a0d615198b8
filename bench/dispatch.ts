// dispatch_per_s vs dispatch_peer_per_s: signed webhook delivery from Lethe's outbox against
// graphile-worker running the same POSTs as jobs, with its throughput options on.
//
// Fair by construction:
// - one fixture (4 applications on one loopback receiver, `warmup` + `rows` outbox rows written by
//   the server's own notification pass), VACUUM ANALYZEd, then copied (CREATE DATABASE … TEMPLATE)
//   for each peer, so every contestant starts from the same pages and statistics; the peer's copy
//   gets graphile-worker's schema and one job per outbox row, then everything is VACUUM ANALYZEd;
// - the same in-flight limit: Lethe's dispatcher with 4 per endpoint × 4 endpoints, the peer with
//   concurrency 16 (both far below their other caps);
// - warm-up for both in the measured process: the `warmup` rows are due at once, the measured rows
//   only when the warm-up is delivered (one UPDATE of their due time, on both sides alike);
// - timed from the first POST of the measured rows to the last delivery recorded;
// - the receiver checks that every contestant POSTed the same webhook-ids and verifies signatures.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Webhook } from 'standardwebhooks';
import {
  checkpoint, cloneDatabase, createDatabase, log, migrateDatabase, pgClient, request, ROOT, round, startServer,
  type BenchDb, type Row,
} from './lib.ts';
import { insertApps, insertDueCases } from './notify.ts';

/** Deliveries in flight, for both Lethe (apps × per-endpoint limit) and the peer (concurrency). */
const DISPATCH_APPS = 4;
const PER_ENDPOINT = 4;
export const IN_FLIGHT = DISPATCH_APPS * PER_ENDPOINT;
/**
 * graphile-worker's throughput options: those of its performance page (worker.graphile.org/docs/
 * performance: localQueue 500, complete/failJobBatchDelay 0) with our concurrency, except the
 * batching delays: 20 ms did better than 0 for the peer here (quick runs of 3,000 rows: 844 against
 * 628 /s, 1,046 against 664 /s; localQueue 17 did worse than 500).
 * LETHE_BENCH_PEER_LOCAL_QUEUE / LETHE_BENCH_PEER_COMPLETE_DELAY try others.
 */
const envInt = (name: string, fallback: number) => (process.env[name] === undefined ? fallback : Number(process.env[name]));
export const PEER_TUNED = {
  localQueueSize: envInt('LETHE_BENCH_PEER_LOCAL_QUEUE', 500),
  completeJobBatchDelay: envInt('LETHE_BENCH_PEER_COMPLETE_DELAY', 20),
  failJobBatchDelay: envInt('LETHE_BENCH_PEER_COMPLETE_DELAY', 20),
};

export async function benchDispatch(o: { rows: number; defaultPeer: boolean }): Promise<{ rows: Row[]; numbers: Record<string, number> }> {
  const n = o.rows;
  const warm = Math.min(1_000, Math.max(200, Math.round(n / 10)));
  const receiver = await startReceiver();
  const dbs: BenchDb[] = [];
  const children: ChildProcess[] = [];
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  // One data directory for both server starts on Lethe's database (its backup marker lives there).
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-bench-dispatch-'));
  try {
    // ---- The fixture: warm-up rows first (due now), then the measured rows (due tomorrow).
    const lethe = await createDatabase('dispatch');
    dbs.push(lethe);
    await migrateDatabase({ databaseUrl: lethe.url });
    let c = await pgClient(lethe.url);
    const apps = await insertApps(c, DISPATCH_APPS, (i) => `${receiver.url}/hook/${i}`);
    receiver.secrets = apps.map((a) => a.secret);
    server = await startServer({ databaseUrl: lethe.url, dataDir });
    await insertDueCases(c, apps.map((a) => a.id), warm);
    await runPass(server.baseUrl);
    const split = (await c.query(`SELECT max(created_at) AS t FROM webhook_outbox`)).rows[0].t as Date;
    await insertDueCases(c, apps.map((a) => a.id), n);
    await runPass(server.baseUrl);
    await server.stop();
    server = undefined;
    await c.query(`UPDATE webhook_outbox SET next_attempt_at = now() + interval '1 day' WHERE created_at > $1`, [split]);
    const counts = (await c.query(`SELECT count(*) FILTER (WHERE next_attempt_at <= now()) AS w, count(*) AS t FROM webhook_outbox`)).rows[0];
    if (Number(counts.w) !== warm || Number(counts.t) !== warm + n) throw new Error(`dispatch fixture: ${counts.w} warm-up and ${counts.t} rows, expected ${warm} and ${warm + n}`);
    await c.query('VACUUM ANALYZE');
    await c.end();

    // ---- The peers' copies: graphile-worker's schema and one job per outbox row (due alike).
    const peers: Array<{ key: 'tuned' | 'default'; db: BenchDb }> = [];
    for (const key of o.defaultPeer ? ['tuned', 'default'] as const : ['tuned'] as const) {
      const db = await cloneDatabase(lethe, `dispatch_peer_${key}`);
      dbs.push(db);
      peers.push({ key, db });
      const gw = await import('graphile-worker');
      await gw.runMigrations({ connectionString: db.url, logger: quietLogger(gw) });
      const p = await pgClient(db.url);
      await p.query(`SELECT graphile_worker.add_job('deliver', json_build_object('id', id), run_at => next_attempt_at, max_attempts => 6)
        FROM webhook_outbox ORDER BY next_attempt_at, id`);
      await p.query('VACUUM ANALYZE');
      await p.end();
    }
    c = await pgClient(lethe.url);
    await c.query('VACUUM ANALYZE');
    await c.end();

    // ---- Lethe: the server's dispatcher.
    await checkpoint();
    const letheRun = await measure(receiver, lethe.url, 'lethe', warm, n,
      `UPDATE webhook_outbox SET next_attempt_at = now() WHERE next_attempt_at > now() AND delivered_at IS NULL`,
      `SELECT outcome, status_code FROM webhook_deliveries WHERE outcome <> 'delivered' LIMIT 1`,
      async () => {
        server = await startServer({
          databaseUrl: lethe.url, dataDir,
          env: { LETHE_DISPATCHER: 'true', LETHE_WEBHOOK_CONCURRENCY_PER_ENDPOINT: String(PER_ENDPOINT) },
        });
      });
    await server!.stop();
    server = undefined;
    log(`dispatch: Lethe ${round(n / letheRun)}/s`);

    // ---- graphile-worker, tuned (and on its defaults).
    const peerSeconds: Partial<Record<'tuned' | 'default', number>> = {};
    for (const { key, db } of peers) {
      await checkpoint();
      let child: ChildProcess | undefined;
      peerSeconds[key] = await measure(receiver, db.url, `peer-${key}`, warm, n,
        `UPDATE graphile_worker._private_jobs SET run_at = now() WHERE run_at > now() AND locked_at IS NULL`,
        `SELECT last_error FROM graphile_worker._private_jobs WHERE last_error IS NOT NULL LIMIT 1`,
        async () => {
          child = spawn(process.execPath, ['bench/peer-worker.ts'], {
            cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'],
            env: {
              ...process.env, PEER_DATABASE_URL: db.url, PEER_CONCURRENCY: String(IN_FLIGHT),
              PEER_SECRETS: JSON.stringify(Object.fromEntries(apps.map((a) => [a.id, a.secret]))),
              ...(key === 'tuned' ? {
                PEER_LOCAL_QUEUE: String(PEER_TUNED.localQueueSize), PEER_COMPLETE_DELAY: String(PEER_TUNED.completeJobBatchDelay),
                PEER_FAIL_DELAY: String(PEER_TUNED.failJobBatchDelay),
              } : {}),
            },
          });
          children.push(child);
        });
      await stopChild(child!);
      log(`dispatch: graphile-worker (${key}) ${round(n / peerSeconds[key]!)}/s`);
    }

    for (const phase of receiver.phases()) {
      const base = phase.endsWith('-warm') ? 'lethe-warm' : 'lethe';
      if (!receiver.same(base, phase)) throw new Error(`${phase} did not POST the same webhook-ids as ${base} (${receiver.size(phase)} against ${receiver.size(base)})`);
    }
    if (receiver.badSignatures > 0) throw new Error(`${receiver.badSignatures} deliveries failed signature verification`);
    if (receiver.verified === 0) throw new Error('no signature was verified');

    const numbers: Record<string, number> = {};
    numbers.dispatch_per_s = round(n / letheRun);
    numbers.dispatch_peer_per_s = round(n / peerSeconds.tuned!);
    numbers.dispatch_peer_ratio = round(numbers.dispatch_per_s / numbers.dispatch_peer_per_s, 2);
    const rows: Row[] = [{
      figure: 'dispatch_per_s', value: numbers.dispatch_per_s, unit: '/s',
      peer: { figure: 'dispatch_peer_per_s', value: numbers.dispatch_peer_per_s },
      ratio: { value: numbers.dispatch_peer_ratio, goal: '>= 1', met: numbers.dispatch_peer_ratio >= 1 },
      note: `${n} rows after ${warm} warm-up, ${DISPATCH_APPS} endpoints x ${PER_ENDPOINT} in flight; signatures verified`,
    }, {
      figure: 'dispatch_peer_per_s', value: numbers.dispatch_peer_per_s, unit: '/s',
      note: `graphile-worker ${gwVersion()}, concurrency ${IN_FLIGHT}, localQueue ${PEER_TUNED.localQueueSize}, `
        + `complete/failJobBatchDelay ${PEER_TUNED.completeJobBatchDelay}; same rows, copy of the same database (bench/peer-worker.ts)`,
    }];
    if (peerSeconds.default !== undefined) {
      numbers.dispatch_peer_default_per_s = round(n / peerSeconds.default);
      rows.push({
        figure: 'dispatch_peer_default_per_s', value: numbers.dispatch_peer_default_per_s, unit: '/s',
        note: `graphile-worker on its defaults (no local queue, no batched completion), concurrency ${IN_FLIGHT}`,
      });
    }
    return { rows, numbers };
  } finally {
    for (const child of children) await stopChild(child);
    await server?.stop();
    for (const db of dbs) await db.drop().catch(() => {});
    await receiver.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(`${dataDir}-keyring`, { recursive: true, force: true });
  }
}

async function runPass(baseUrl: string) {
  const job = await request(baseUrl, 'POST', '/v1/jobs/deletion-notifications/run', {});
  if (job.status !== 200) throw new Error(`notification job: ${job.status} ${job.body.toString().slice(0, 300)}`);
}

/**
 * The warm-up rows delivered (unmeasured), then `release` makes the measured rows due; seconds
 * from the first measured POST to the last measured delivery recorded.
 */
async function measure(receiver: Receiver, url: string, phase: string, warm: number, n: number, release: string, failures: string,
  start: () => Promise<void>): Promise<number> {
  const c = await pgClient(url);
  try {
    receiver.reset(`${phase}-warm`); // before the contestant starts: it delivers the warm-up at once
    await start();
    // Every delivery succeeds against this receiver: a failure is a bench bug, reported at once.
    const delivered = async () => {
      const failed = (await c.query(failures)).rows[0];
      if (failed) throw new Error(`${phase}: a delivery failed: ${JSON.stringify(failed).slice(0, 300)}`);
      return Number((await c.query(`SELECT count(*) AS n FROM webhook_deliveries WHERE outcome = 'delivered'`)).rows[0].n);
    };
    await waitFor(receiver, async () => (await delivered()) >= warm, `${phase} warm-up`);
    receiver.reset(phase);
    const released = await c.query(release);
    if (released.rowCount !== n) throw new Error(`${phase}: released ${released.rowCount} rows, expected ${n}`);
    return await waitFor(receiver, async () => (await delivered()) >= warm + n, phase);
  } finally {
    await c.end();
  }
}

async function stopChild(child: ChildProcess) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

function gwVersion(): string {
  try { return String((JSON.parse(fs.readFileSync(`${ROOT}/node_modules/graphile-worker/package.json`, 'utf8')) as { version: string }).version); } catch { return '?'; }
}

function quietLogger(gw: typeof import('graphile-worker')) {
  return new gw.Logger(() => (level, message) => { if (level === 'error') console.error(message); });
}

/** From the first POST received to `done()`, polled every 50 ms (10 min at most); in seconds. */
async function waitFor(receiver: Receiver, done: () => Promise<boolean>, what: string): Promise<number> {
  const deadline = Date.now() + 600_000;
  for (;;) {
    if (await done()) break;
    if (Date.now() > deadline) throw new Error(`${what}: not finished in 10 minutes (${receiver.count} received)`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const end = performance.now();
  if (receiver.firstAt === null) throw new Error(`${what}: nothing received`);
  return (end - receiver.firstAt) / 1000;
}

interface Receiver {
  url: string;
  secrets: string[];
  count: number;
  firstAt: number | null;
  badSignatures: number;
  verified: number;
  reset(phase: string): void;
  phases(): string[];
  size(phase: string): number;
  /** Whether two phases received the same webhook-ids (and something). */
  same(a: string, b: string): boolean;
  close(): Promise<void>;
}

/** A loopback webhook receiver answering 204 at once; verifies the first 50 signatures of each phase. */
async function startReceiver(): Promise<Receiver> {
  const ids = new Map<string, Set<string>>();
  let phase = 'none';
  const verifiers = new Map<number, Webhook>();
  const r: Receiver = {
    url: '', secrets: [], count: 0, firstAt: null, badSignatures: 0, verified: 0,
    reset(p) { phase = p; r.count = 0; r.firstAt = null; ids.set(p, new Set()); },
    phases: () => [...ids.keys()],
    size: (p) => ids.get(p)?.size ?? 0,
    same(a, b) {
      const x = ids.get(a);
      const y = ids.get(b);
      if (!x || !y || x.size === 0 || x.size !== y.size) return false;
      for (const id of x) if (!y.has(id)) return false;
      return true;
    },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    r.firstAt ??= performance.now();
    r.count++;
    ids.get(phase)?.add(String(req.headers['webhook-id'] ?? ''));
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
          r.verified++;
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
