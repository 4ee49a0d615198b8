// The dispatch peer: what a Node team would otherwise build with graphile-worker. One job per
// outbox row; the task reads the row and its endpoint, signs the body per Standard Webhooks
// (the `standardwebhooks` package, as Lethe does), POSTs it over a keep-alive agent, and records
// the attempt and the delivered state in one statement — the same bookkeeping Lethe does.
// Run as a child process by bench/dispatch.ts: PEER_DATABASE_URL, PEER_CONCURRENCY, and the
// throughput options of graphile-worker 0.17 (unset: its defaults, each off): PEER_LOCAL_QUEUE
// (`localQueue.size`: jobs fetched and locked per query, served to the workers locally),
// PEER_COMPLETE_DELAY / PEER_FAIL_DELAY (`completeJobBatchDelay` / `failJobBatchDelay`, ms: job
// completions and failures batched into one statement).
import http from 'node:http';
import { Logger, run, type Task } from 'graphile-worker';
import { Webhook } from 'standardwebhooks';

const connectionString = process.env.PEER_DATABASE_URL!;
const concurrency = Number(process.env.PEER_CONCURRENCY ?? 16);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, scheduling: 'fifo' });
// The endpoints' signing secrets in clear, by application id (PEER_SECRETS, JSON): Lethe keeps
// them encrypted at rest (`env:` values), which the peer cannot read.
const secrets = JSON.parse(process.env.PEER_SECRETS ?? '{}') as Record<string, string>;
const signers = new Map<string, Webhook>();

function post(url: string, body: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers },
    }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
    req.setTimeout(15_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

const deliver: Task = async (payload, helpers) => {
  const { id } = payload as { id: string };
  const { rows } = await helpers.query<{ payload: { type: string; timestamp: string; data: unknown }; webhookUrl: string; applicationId: string }>(
    `SELECT o.payload, o.application_id AS "applicationId", a.webhook_url AS "webhookUrl"
     FROM webhook_outbox o JOIN applications a ON a.id = o.application_id WHERE o.id = $1`, [id]);
  const row = rows[0];
  if (!row) return;
  const body = JSON.stringify({ type: row.payload.type, timestamp: row.payload.timestamp, data: row.payload.data });
  let signer = signers.get(row.applicationId);
  if (!signer) {
    const secret = secrets[row.applicationId];
    if (!secret) throw new Error(`no secret for application ${row.applicationId} in PEER_SECRETS`);
    signer = new Webhook(secret);
    signers.set(row.applicationId, signer);
  }
  const at = new Date(Math.floor(Date.now() / 1000) * 1000);
  const started = performance.now();
  const status = await post(row.webhookUrl, body, {
    'webhook-id': id, 'webhook-timestamp': String(at.getTime() / 1000), 'webhook-signature': signer.sign(id, at, body),
  });
  if (status < 200 || status >= 300) throw new Error(`HTTP ${status}`); // graphile-worker retries
  await helpers.query(
    `WITH d AS (INSERT INTO webhook_deliveries (outbox_id, application_id, attempt, attempted_at, duration_ms, status_code, outcome)
       SELECT id, application_id, attempts + 1, $2, $3, $4, 'delivered' FROM webhook_outbox WHERE id = $1)
     UPDATE webhook_outbox SET attempts = attempts + 1, status = 'delivered', delivered_at = now(), last_status_code = $4
     WHERE id = $1`,
    [id, at, Math.round(performance.now() - started), status]);
};

const option = (name: string) => (process.env[name] === undefined ? undefined : Number(process.env[name]));
const localQueueSize = option('PEER_LOCAL_QUEUE');
const completeJobBatchDelay = option('PEER_COMPLETE_DELAY');
const failJobBatchDelay = option('PEER_FAIL_DELAY');

const runner = await run({
  connectionString, concurrency, maxPoolSize: concurrency + 4, noHandleSignals: false, pollInterval: 1000,
  preset: {
    worker: {
      ...(localQueueSize !== undefined ? { localQueue: { size: localQueueSize } } : {}),
      ...(completeJobBatchDelay !== undefined ? { completeJobBatchDelay } : {}),
      ...(failJobBatchDelay !== undefined ? { failJobBatchDelay } : {}),
    },
  },
  taskList: { deliver },
  // Warnings and errors only: Lethe's server does not log per delivery either.
  logger: new Logger(() => (level, message) => { if (level === 'error' || level === 'warning') console.error(message); }),
});
process.on('SIGTERM', () => { void runner.stop().then(() => process.exit(0)); });
await runner.promise;
