// `npm run soak -- --minutes N`: a mixed load against a real server process on PostgreSQL, with a
// webhook receiver that fails 20% of deliveries; then proves nothing was lost. Not part of `npm test`.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '8' },
    'admin-url': { type: 'string', default: process.env.LETHE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    'fail-rate': { type: 'string', default: '0.2' },
    keep: { type: 'boolean', default: false },
  },
});
const MINUTES = Number(args.minutes);
const CONCURRENCY = Number(args.concurrency);
const FAIL_RATE = Number(args['fail-rate']);
const ADMIN_KEY = `lethe_op_soak_${crypto.randomBytes(16).toString('hex')}`;
const log = (msg: string) => console.log(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}`);

// ---- database -------------------------------------------------------------------------------
const dbName = `lethe_soak_${crypto.randomBytes(5).toString('hex')}`;
const admin = new pg.Client({ connectionString: args['admin-url'] });
await admin.connect();
await admin.query(`CREATE DATABASE ${dbName}`);
const dbUrl = new URL(args['admin-url']!);
dbUrl.pathname = `/${dbName}`;

// ---- receiver: fails FAIL_RATE of deliveries with a 500 --------------------------------------
const delivered = new Set<string>(); // subscriptionId:applicationId answered 2xx
const seenIds = new Map<string, number>(); // webhook-id → deliveries answered 2xx
let receiverCalls = 0;
let receiverFailures = 0;
const receiver = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    receiverCalls++;
    if (Math.random() < FAIL_RATE) { receiverFailures++; res.writeHead(500).end(); return; }
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      delivered.add(`${body.data.subscriptionId}:${body.data.applicationId}`);
      const id = String(req.headers['webhook-id']);
      seenIds.set(id, (seenIds.get(id) ?? 0) + 1);
    } catch { /* counted as a call */ }
    res.writeHead(204).end();
  });
});
await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
const receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;

// ---- server process ---------------------------------------------------------------------------
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-soak-'));
const port = 20000 + Math.floor(Math.random() * 20000);
const server = spawn(process.execPath, ['src/main.ts'], {
  env: {
    ...process.env, PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: dbUrl.toString(), LETHE_DATA_DIR: dataDir,
    LETHE_ADMIN_KEY: ADMIN_KEY, LETHE_WEBHOOK_ALLOW_PRIVATE: 'true', LETHE_WEBHOOK_RETRY_SCHEDULE: '1s,2s,4s,8s,15s,30s',
    LETHE_RATE_LIMIT_PER_MINUTE: '10000000', LOG_LEVEL: 'warn',
  },
  stdio: ['ignore', 'ignore', 'inherit'],
});
const base = `http://127.0.0.1:${port}`;
for (let i = 0; ; i++) {
  try { if ((await fetch(`${base}/readyz`)).ok) break; } catch { /* starting */ }
  if (i > 300) throw new Error('server did not become ready');
  await new Promise((r) => setTimeout(r, 100));
}
log(`server pid ${server.pid} on ${base}, database ${dbName}`);

// ---- client ---------------------------------------------------------------------------------
const counts: Record<string, number> = {};
const bump = (k: string, n = 1) => { counts[k] = (counts[k] ?? 0) + n; };
async function call(key: string, method: string, url: string, body?: unknown) {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  bump('requests');
  if (res.status >= 500) { bump('responses_5xx'); log(`5xx: ${method} ${url} ${res.status}`); }
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}
const op = (method: string, url: string, body?: unknown) => call(ADMIN_KEY, method, url, body);

const apps: Array<{ id: string; key: string }> = [];
for (let i = 0; i < 3; i++) {
  const a = await op('POST', '/v1/applications', { name: `soak-${i}`, webhookUrl: `${receiverUrl}/${i}` });
  const k = await op('POST', '/v1/api-keys', { kind: 'application', applicationIds: [a.body.id] });
  apps.push({ id: a.body.id, key: k.body.key });
}

interface Live { id: string; token: string; licenses: Array<{ id: string; appId: string; active: boolean }> }
const living: Live[] = [];
const deletedTokens = new Set<string>();
const livingTokens = new Set<string>();
const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)];

async function createCustomer() {
  const token = `SOAK${crypto.randomBytes(8).toString('hex')}`;
  const c = await op('POST', '/v1/customers', {
    firstName: `${token}f`, lastName: `${token}l`, email: `${token}@example.com`, tin: `${token}t`,
    metadata: { note: `${token}m` },
  });
  if (c.status !== 201) return;
  await op('POST', `/v1/customers/${c.body.id}/addresses`, { line1: `${token} street`, phone: '+49 30 123456', city: 'Berlin' });
  await op('POST', `/v1/customers/${c.body.id}/payment-methods`, { brand: 'visa', cardId: `${token}c`, last4: '4242', expMonth: 1, expYear: 2030, token: `${token}k` });
  await op('POST', `/v1/customers/${c.body.id}/transactions`, { amountMinor: 500, currency: 'EUR', status: 'succeeded' });
  const live: Live = { id: c.body.id, token, licenses: [] };
  for (const a of apps) {
    if (Math.random() < 0.6) {
      const l = await op('POST', `/v1/customers/${c.body.id}/licenses`, { applicationId: a.id });
      if (l.status === 201) live.licenses.push({ id: l.body.id, appId: a.id, active: true });
    }
  }
  living.push(live);
  livingTokens.add(token);
  bump('customers_created');
}

async function churnLicense() {
  const c = pick(living);
  if (!c) return;
  const active = c.licenses.filter((l) => l.active);
  if (active.length > 0 && Math.random() < 0.5) {
    const l = pick(active)!;
    l.active = false;
    const r = await op('POST', `/v1/licenses/${l.id}/cancel`);
    if (r.status === 200) bump('licenses_cancelled');
  } else {
    const a = pick(apps)!;
    const r = await op('POST', `/v1/customers/${c.id}/licenses`, { applicationId: a.id });
    if (r.status === 201) { c.licenses.push({ id: r.body.id, appId: a.id, active: true }); bump('licenses_added'); }
  }
}

async function deleteCustomer() {
  if (living.length < 5) return;
  const i = Math.floor(Math.random() * living.length);
  const c = living.splice(i, 1)[0]!;
  const r = await op('DELETE', `/v1/customers/${c.id}`);
  if (r.status === 204) { deletedTokens.add(c.token); livingTokens.delete(c.token); bump('customers_deleted'); } else bump(`delete_${r.status}`);
}

async function confirmSome() {
  const a = pick(apps)!;
  const list = await call(a.key, 'GET', '/v1/data-deletions?status=required&limit=20');
  for (const c of (list.body?.data ?? []).slice(0, 5)) {
    const r = await call(a.key, 'POST', '/v1/data-deletions/confirmations', { subscriptionId: c.subscriptionId });
    if (r.status === 200) bump('confirmations');
  }
}

async function runJobs() {
  await op('POST', '/v1/jobs/grace-periods/run');
  await op('POST', '/v1/jobs/deletion-notifications/run');
  bump('notification_passes');
}

// ---- memory sampling (server RSS) -------------------------------------------------------------
const rss: number[] = [];
const rssOf = () => {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${server.pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
};
const sampler = setInterval(() => { try { rss.push(rssOf()); } catch { /* exited */ } }, 5000);

// ---- load -------------------------------------------------------------------------------------
const deadline = Date.now() + MINUTES * 60_000;
for (let i = 0; i < 20; i++) await createCustomer();
let lastJobs = 0;
await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
  while (Date.now() < deadline) {
    const r = Math.random();
    try {
      if (Date.now() - lastJobs > 10_000) { lastJobs = Date.now(); await runJobs(); }
      else if (r < 0.35) await createCustomer();
      else if (r < 0.6) await churnLicense();
      else if (r < 0.85) await deleteCustomer();
      else await confirmSome();
    } catch (error) {
      bump('client_errors');
      log(`client error: ${(error as Error).message}`);
    }
  }
}));
log('load finished; draining the outbox');

// ---- drain: every due case must reach the receiver --------------------------------------------
const q = new pg.Client({ connectionString: dbUrl.toString() });
await q.connect();
await runJobs();
for (let i = 0; i < 240; i++) {
  const { rows } = await q.query(`SELECT count(*)::int AS n FROM webhook_outbox WHERE status = 'pending'`);
  if (rows[0].n === 0) break;
  await new Promise((r) => setTimeout(r, 1000));
}
const { rows: due } = await q.query(
  `SELECT customer_id AS "subscriptionId", application_id AS "applicationId" FROM deletion_cases WHERE status IN ('required', 'confirmed')`,
);
const undelivered = due.filter((c) => !delivered.has(`${c.subscriptionId}:${c.applicationId}`));
const { rows: outboxStates } = await q.query(`SELECT status, count(*)::int AS n FROM webhook_outbox GROUP BY status`);

// ---- canary scan over every text/json/bytea column ---------------------------------------------
const { rows: columns } = await q.query(`
  SELECT table_name, column_name FROM information_schema.columns
  WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'bytea', 'USER-DEFINED', 'ARRAY')`);
const found = new Set<string>();
for (const { table_name: t, column_name: c } of columns) {
  const { rows } = await q.query(`SELECT "${c}"::text AS v FROM "${t}" WHERE "${c}"::text LIKE '%SOAK%'`);
  for (const r of rows) for (const m of String(r.v).matchAll(/SOAK[0-9a-f]{16}/g)) found.add(m[0]);
}
const residual = [...deletedTokens].filter((t) => found.has(t));
const livingMissing = [...livingTokens].filter((t) => !found.has(t));
const verify = await op('GET', '/v1/audit-events/verify');

clearInterval(sampler);
const third = Math.max(1, Math.floor(rss.length / 3));
const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const rssEarly = avg(rss.slice(1, third + 1));
const rssLate = avg(rss.slice(-third));
const duplicates = [...seenIds.values()].filter((n) => n > 1).length;

server.kill('SIGTERM');
await q.end();
receiver.close();
if (!args.keep) await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
await admin.end();
fs.rmSync(dataDir, { recursive: true, force: true });

const ok = residual.length === 0 && livingMissing.length === 0 && undelivered.length === 0
  && verify.body?.valid === true && (counts.responses_5xx ?? 0) === 0 && rssLate < rssEarly * 1.5 + 50;
console.log(`
Soak summary (${MINUTES} min, ${CONCURRENCY} workers, ${os.cpus().length} cores, receiver failing ${FAIL_RATE * 100}%)
  requests                 ${counts.requests ?? 0} (5xx: ${counts.responses_5xx ?? 0}, client errors: ${counts.client_errors ?? 0})
  customers created        ${counts.customers_created ?? 0}
  customers deleted        ${counts.customers_deleted ?? 0}
  licenses added/cancelled ${counts.licenses_added ?? 0}/${counts.licenses_cancelled ?? 0}
  confirmation calls (200) ${counts.confirmations ?? 0} (repeats of one case included)
  notification passes      ${counts.notification_passes ?? 0}
  receiver calls           ${receiverCalls} (failed on purpose: ${receiverFailures}; webhook-ids delivered twice: ${duplicates})
  outbox by status         ${outboxStates.map((r) => `${r.status}=${r.n}`).join(' ')}
  due cases                ${due.length}, never delivered: ${undelivered.length}
  canary scan              deleted customers with residual data: ${residual.length}/${deletedTokens.size}; living customers found: ${livingTokens.size - livingMissing.length}/${livingTokens.size}
  audit chain              ${verify.body?.valid ? 'valid' : 'INVALID'} (${verify.body?.count} events)
  server RSS               first third ${rssEarly.toFixed(1)} MB, last third ${rssLate.toFixed(1)} MB (${rss.length} samples)
  result                   ${ok ? 'PASS' : 'FAIL'}
Reproduce: npm run soak -- --minutes ${MINUTES}
`);
process.exit(ok ? 0 : 1);
