// End to end with real processes: Lethe and the example partner application (examples/partner-app)
// as two servers. The example receives data_deletion.required through @lethe/client's handler,
// deletes its rows, confirms; pull mode does the same without a webhook URL.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Webhook } from 'standardwebhooks';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer, type ServerProcess } from './helpers/process.ts';
import { createPgDatabase, TEST_DB } from './helpers/runtime.ts';

const EXAMPLE = 'examples/partner-app/src/main.ts';
const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => { for (const c of cleanup.reverse()) await c().catch(() => undefined); });

const tmp = (name: string) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lethe-e2e-${name}-`));
  cleanup.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
};

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('partner application end to end (two processes)', () => {
  it('webhook → delete rows → confirm (deleted / no_data_held); a tampered signature deletes nothing; pull mode without a URL', async () => {
    const adminKey = `lethe_op_${crypto.randomBytes(16).toString('hex')}`;
    const pgDb = TEST_DB === 'postgres' ? await createPgDatabase() : null;
    if (pgDb) cleanup.push(() => pgDb.drop());
    const lethe = await startServer({
      LETHE_DATA_DIR: tmp('lethe'), LETHE_ADMIN_KEY: adminKey, LETHE_WEBHOOK_ALLOW_PRIVATE: 'true',
      LETHE_SCHEDULER: 'false', LETHE_RATE_LIMIT_PER_MINUTE: '100000', ...(pgDb ? { DATABASE_URL: pgDb.url } : {}),
    });
    cleanup.push(() => lethe.stop());
    const call = async (key: string, method: string, url: string, body?: unknown) => {
      const r = await fetch(`${lethe.url}${url}`, {
        method, body: body === undefined ? undefined : JSON.stringify(body),
        headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      });
      return { status: r.status, body: await r.json().catch(() => null) as any };
    };
    const op = (method: string, url: string, body?: unknown) => call(adminKey, method, url, body);
    expect((await op('PATCH', '/v1/settings', { gracePeriodDays: 0 })).status).toBe(200);

    // The push-mode partner: an application whose webhook URL is the example's, and its key.
    const pushPort = await import('./helpers/process.ts').then((m) => m.freePort());
    const app = (await op('POST', '/v1/applications', { name: 'example', webhookUrl: `http://127.0.0.1:${pushPort}/webhooks/lethe` })).body;
    const appKey = (await op('POST', '/v1/api-keys', { kind: 'application', applicationIds: [app.id] })).body.key as string;
    const exampleDir = tmp('example');
    const example = await startExample({ LETHE_URL: lethe.url, LETHE_API_KEY: appKey, LETHE_WEBHOOK_SECRET: app.webhookSecret, DATA_DIR: exampleDir }, pushPort);
    cleanup.push(() => example.stop());
    const records = async (ex: ServerProcess, id: string) => ((await (await fetch(`${ex.url}/demo/customers/${id}/records`)).json()) as { records: number }).records;
    const seed = async (ex: ServerProcess, id: string) => {
      expect((await fetch(`${ex.url}/demo/customers/${id}/records`, { method: 'POST', body: '{}' })).status).toBe(201);
      expect(await records(ex, id)).toBe(4);
    };
    const customerWithLicense = async (applicationId: string) => {
      const c = (await op('POST', '/v1/customers', { email: `p${crypto.randomBytes(4).toString('hex')}@example.com` })).body;
      const l = (await op('POST', `/v1/customers/${c.id}/licenses`, { applicationId })).body;
      return { id: c.id as string, licenseId: l.id as string };
    };
    const caseOf = async (customerId: string) => (await op('GET', `/v1/data-deletions?subscriptionId=${customerId}`)).body.data[0];

    // 1. Known customer: cancelled with a zero grace period, the daily pass runs, the example deletes and confirms.
    const known = await customerWithLicense(app.id);
    const tampered = await customerWithLicense(app.id);
    await seed(example, known.id);
    await seed(example, tampered.id);
    expect((await op('POST', `/v1/licenses/${known.licenseId}/cancel`)).status).toBe(200);
    expect((await op('POST', '/v1/jobs/deletion-notifications/run')).status).toBe(200);
    const confirmed = await until('the case confirmed', async () => {
      const c = await caseOf(known.id);
      return c?.status === 'confirmed' ? c : undefined;
    });
    expect(confirmed.outcome).toBe('deleted');
    expect(await records(example, known.id)).toBe(0);
    const history = (await call(appKey, 'GET', `/v1/data-deletions/confirmations?subscriptionId=${known.id}`)).body.data;
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({ outcome: 'deleted', applicationId: app.id });

    // 2. A customer the example never saw: confirmed with no_data_held.
    const unknown = await customerWithLicense(app.id);
    expect((await op('POST', `/v1/licenses/${unknown.licenseId}/cancel`)).status).toBe(200);
    const noData = await until('the unknown customer confirmed', async () => {
      const c = await caseOf(unknown.id);
      return c?.status === 'confirmed' ? c : undefined;
    });
    expect(noData.outcome).toBe('no_data_held');

    // 3. A forged webhook for a customer the example holds: refused, nothing deleted, nothing confirmed.
    const body = JSON.stringify({ type: 'data_deletion.required', timestamp: new Date().toISOString(),
      data: { subscriptionId: tampered.id, applicationId: app.id, reason: 'customer_deleted', requiredSince: new Date().toISOString() } });
    const msgId = `msg_${crypto.randomBytes(16).toString('hex')}`;
    const now = new Date();
    const good = new Webhook(app.webhookSecret).sign(msgId, now, body);
    const forged = new Webhook(`whsec_${crypto.randomBytes(32).toString('base64')}`).sign(msgId, now, body);
    const post = (sig: string, b = body, ts = now) => fetch(`${example.url}/webhooks/lethe`, {
      method: 'POST', body: b,
      headers: { 'content-type': 'application/json', 'webhook-id': msgId, 'webhook-timestamp': String(Math.floor(ts.getTime() / 1000)), 'webhook-signature': sig },
    });
    expect((await post(forged)).status).toBe(401);
    expect((await post(good, body.replace(tampered.id, known.id))).status).toBe(401); // body changed after signing
    const stale = new Date(now.getTime() - 10 * 60_000);
    expect((await post(new Webhook(app.webhookSecret).sign(msgId, stale, body), body, stale)).status).toBe(401);
    expect(await records(example, tampered.id)).toBe(4);
    expect(await caseOf(tampered.id)).toBeUndefined();

    // 4. Pull mode: an application without a webhook URL; the example lists its due cases and processes them.
    const pullApp = (await op('POST', '/v1/applications', { name: 'example-pull' })).body;
    const pullKey = (await op('POST', '/v1/api-keys', { kind: 'application', applicationIds: [pullApp.id] })).body.key as string;
    const puller = await startExample({ LETHE_URL: lethe.url, LETHE_API_KEY: pullKey, LETHE_WEBHOOK_SECRET: pullApp.webhookSecret });
    cleanup.push(() => puller.stop());
    const p1 = await customerWithLicense(pullApp.id);
    const p2 = await customerWithLicense(pullApp.id);
    await seed(puller, p1.id);
    for (const c of [p1, p2]) expect((await op('POST', `/v1/licenses/${c.licenseId}/cancel`)).status).toBe(200);
    expect((await op('POST', '/v1/jobs/deletion-notifications/run')).status).toBe(200);
    const summary = await (await fetch(`${puller.url}/demo/pull`, { method: 'POST' })).json();
    expect(summary).toMatchObject({ processed: 2, deleted: 1, noDataHeld: 1, failed: 0 });
    expect(await caseOf(p1.id)).toMatchObject({ status: 'confirmed', outcome: 'deleted' });
    expect(await caseOf(p2.id)).toMatchObject({ status: 'confirmed', outcome: 'no_data_held' });
    expect(await records(puller, p1.id)).toBe(0);
    // Nothing left to pull.
    expect(await (await fetch(`${puller.url}/demo/pull`, { method: 'POST' })).json()).toMatchObject({ processed: 0 });

    // The example's own database, opened after it stopped: the deleted customer's rows are gone, the other's kept.
    expect(await example.stop()).toBe(0);
    const db = new PGlite(exampleDir);
    try {
      const count = async (id: string) => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM notes WHERE customer_id = $1', [id])).rows[0]!.n;
      expect(await count(known.id)).toBe(0);
      expect(await count(tampered.id)).toBe(3);
      const erasures = await db.query<{ customer_id: string; outcome: string }>('SELECT customer_id, outcome FROM erasures ORDER BY at');
      expect(erasures.rows).toEqual([{ customer_id: known.id, outcome: 'deleted' }, { customer_id: unknown.id, outcome: 'no_data_held' }]);
    } finally {
      await db.close();
    }
  }, 240_000);
});

/** Starts the example on `port` (or a free one) and waits for its /healthz. */
async function startExample(env: Record<string, string>, port?: number): Promise<ServerProcess> {
  if (port === undefined) return startServer(env, EXAMPLE);
  // startServer picks its own port; the push example must listen where the webhook URL points.
  const { spawn } = await import('node:child_process');
  const { ROOT, baseEnv } = await import('./helpers/process.ts');
  const child = spawn(process.execPath, [path.join(ROOT, EXAMPLE)], { cwd: ROOT, env: baseEnv({ ...env, PORT: String(port), HOST: '127.0.0.1' }) });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  let exited: number | null | undefined;
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => { exited = code; resolve(code); }));
  const url = `http://127.0.0.1:${port}`;
  await until(`the example on ${port}`, async () => {
    if (exited !== undefined) throw new Error(`example exited with ${exited}:\n${out}`);
    return fetch(`${url}/healthz`).then((r) => (r.ok ? true : undefined), () => undefined);
  }, 60_000);
  return { url, output: () => out, stop: async () => { if (exited === undefined) child.kill('SIGTERM'); return closed; } };
}
