import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type DatabaseHandle } from '../src/db/database.ts';
import { enqueueWebhook } from '../src/webhooks/outbox.repo.ts';
import { ADMIN_KEY, TEST_DB, createPgDatabase } from './helpers/runtime.ts';
import { freePort, startReceiver, type Receiver } from './helpers/receiver.ts';

/**
 * Crash safety of the outbox with real processes: SIGKILL a server in the middle of dispatching
 * 1,000 webhooks, start another, and check that every webhook arrives at least once and that
 * duplicates carry the same webhook-id. PostgreSQL only: an embedded PGlite database belongs to
 * one process (its files cannot be opened by a second server while a killed one may have left
 * them mid-write), so "another instance finishes the work" only exists on a PostgreSQL server.
 */
describe.skipIf(TEST_DB !== 'postgres')('SIGKILL during dispatch (PostgreSQL, real processes)', () => {
  const COUNT = 1000;
  let pgDb: Awaited<ReturnType<typeof createPgDatabase>>;
  let handle: DatabaseHandle;
  let rx: Receiver;
  let dataDir: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    pgDb = await createPgDatabase();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-crash-'));
    rx = await startReceiver();
    // A receiver that takes a moment per request, so the kill lands mid-dispatch.
    rx.on('/crash', (_r, res) => { setTimeout(() => res.writeHead(204).end(), 40); });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await handle?.close();
    await rx?.close();
    await pgDb?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  async function startServer(port: number): Promise<ChildProcess> {
    const child = spawn(process.execPath, ['src/main.ts'], {
      cwd: path.resolve(import.meta.dirname, '..'),
      env: {
        ...process.env,
        DATABASE_URL: pgDb.url, PORT: String(port), HOST: '127.0.0.1', LETHE_DATA_DIR: dataDir,
        LETHE_ADMIN_KEY: ADMIN_KEY, LETHE_MASTER_KEY: crypto.createHash('sha256').update('crash-test').digest('base64'),
        LETHE_WEBHOOK_ALLOW_PRIVATE: 'true', LETHE_DISPATCHER: 'true', LETHE_SCHEDULER: 'false', LOG_LEVEL: 'error',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited: ${stderr}`);
      try {
        const r = await fetch(`http://127.0.0.1:${port}/readyz`);
        if (r.ok) return child;
      } catch { /* not up yet */ }
      if (Date.now() > deadline) throw new Error(`server did not become ready: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('delivers every webhook at least once across a SIGKILL, duplicates keeping their webhook-id', async () => {
    const port1 = await freePort();
    const first = await startServer(port1);
    const created = await fetch(`http://127.0.0.1:${port1}/v1/applications`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'crash-partner', webhookUrl: rx.url('/crash') }),
    });
    expect(created.status).toBe(201);
    const app = await created.json() as { id: string; webhookSecret: string };

    handle = await openDatabase({ databaseUrl: pgDb.url, poolSize: 2 });
    const db = handle.db;
    const ids = await db.transaction().execute(async (trx) => {
      const out: string[] = [];
      for (let i = 0; i < COUNT; i++) {
        out.push(await enqueueWebhook(trx, {
          applicationId: app.id, type: 'data_deletion.required', caseId: null, at: new Date(),
          data: { subscriptionId: crypto.randomUUID(), applicationId: app.id, reason: 'customer_deleted', requiredSince: new Date().toISOString() },
        }));
      }
      return out;
    });

    // Kill it mid-dispatch, while it holds leases.
    await expect.poll(() => rx.to('/crash').length, { timeout: 60_000, interval: 20 }).toBeGreaterThanOrEqual(150);
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    const atKill = await db.selectFrom('webhookOutbox').select(['status', 'leaseOwner']).where('applicationId', '=', app.id).execute();
    const deliveredAtKill = atKill.filter((r) => r.status === 'delivered').length;
    expect(deliveredAtKill).toBeLessThan(COUNT);
    const inFlightAtKill = atKill.filter((r) => r.status === 'pending' && r.leaseOwner !== null).length;
    expect(inFlightAtKill).toBeGreaterThan(0);

    // Another instance takes over once the dead one's leases expire (within a minute).
    const port2 = await freePort();
    const second = await startServer(port2);
    await expect.poll(async () => {
      const r = await db.selectFrom('webhookOutbox').select((eb) => eb.fn.countAll<number>().as('n'))
        .where('applicationId', '=', app.id).where('status', '=', 'delivered').executeTakeFirstOrThrow();
      return Number(r.n);
    }, { timeout: 120_000, interval: 250 }).toBe(COUNT);
    second.kill('SIGTERM');
    await new Promise((resolve) => second.once('exit', resolve));

    const got = rx.to('/crash');
    const byId = new Map<string, Set<string>>();
    for (const r of got) {
      const id = String(r.headers['webhook-id']);
      // Every request, duplicate or not, is correctly signed for its id.
      const key = Buffer.from(app.webhookSecret.slice('whsec_'.length), 'base64');
      const sig = crypto.createHmac('sha256', key).update(`${id}.${String(r.headers['webhook-timestamp'])}.${r.body}`).digest('base64');
      expect(String(r.headers['webhook-signature'])).toBe(`v1,${sig}`);
      if (!byId.has(id)) byId.set(id, new Set());
      byId.get(id)!.add(r.body);
    }
    // Nothing lost, nothing invented; a duplicate is the same webhook (same id, same body).
    expect(new Set(byId.keys())).toEqual(new Set(ids));
    for (const bodies of byId.values()) expect(bodies.size).toBe(1);
    // A duplicate can only be a webhook that was in flight (leased, not yet marked delivered) at the kill.
    const duplicates = got.length - byId.size;
    expect(duplicates).toBeLessThanOrEqual(inFlightAtKill);
    const attempts = await db.selectFrom('webhookDeliveries').select(['outboxId']).where('applicationId', '=', app.id).execute();
    expect(new Set(attempts.map((a) => a.outboxId))).toEqual(new Set(ids));
    console.log(`crash test: ${deliveredAtKill} delivered before SIGKILL, ${got.length} requests for ${COUNT} webhooks (${duplicates} duplicates)`);
  }, 240_000);
});
