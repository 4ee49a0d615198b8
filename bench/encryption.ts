// Issue 16 figures: what encrypting every personal value per customer (crypto-shredding) costs on
// DELETE, on a read of one customer and on an export. The real app runs in this process (Fastify
// inject, no network), so the FieldCrypto object on ctx.crypto can be instrumented: its methods
// are wrapped with process.hrtime.bigint() accumulators, and the time spent inside them is
// compared with the operation's wall time. The floor is the same number of AES-256-GCM seal/open
// operations done in a bare node:crypto loop (the unavoidable cost of the encryption itself).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { PREFIX, type FieldCrypto } from '../src/crypto/field-crypto.ts';
import { startRuntime } from '../src/runtime.ts';
import { createServices } from '../src/services.ts';
import { ADMIN_KEY, createDatabase, log, MASTER_KEY, round, type GroupResult, type Row } from './lib.ts';

export interface EncryptionOptions {
  /** Populated customers deleted one after the other. */
  deletes: number;
  /** GET /v1/customers/{id}, one after the other. */
  reads: number;
  /** Customers (rows) in the exported dataset. */
  exportRows: number;
  /** Run the group on in-process PGlite as well. */
  pglite: boolean;
}

// ---------------------------------------------------------------------------------------------
// Instrumentation of ctx.crypto

/** Time inside the crypto module; nested and concurrent calls count once (union of intervals). */
class Meter {
  private active = 0;
  private since = 0n;
  ns = 0n;
  enter() { if (this.active++ === 0) this.since = process.hrtime.bigint(); }
  leave() { if (--this.active === 0) this.ns += process.hrtime.bigint() - this.since; }
}

interface Probe {
  /** Synchronous work: encrypt/decrypt of rows and bytes, blind indexes (AES-GCM, HMAC, JSON). */
  sync: Meter;
  /** Key lookups, creation and destruction (CustomerKeys: database round trips and key unwrapping). */
  keys: Meter;
  seals: number;
  opens: number;
  reset(): void;
}

/** How many sealed values a stored row holds (one per text/int/json column, one per json-values key). */
function countSealed(row: Record<string, unknown>): number {
  let n = 0;
  const count = (v: unknown): void => {
    if (typeof v === 'string') {
      if (v.startsWith(PREFIX)) n++;
      else if (v.startsWith(`"${PREFIX}`)) n++;
      else if (v.startsWith('{')) { try { count(JSON.parse(v) as unknown); } catch { /* clear text */ } }
    } else if (v && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v) && !(v instanceof Date)) {
      for (const x of Object.values(v)) if (typeof x === 'string' && x.startsWith(PREFIX)) n++;
    }
  };
  for (const v of Object.values(row)) count(v);
  return n;
}

/** Wraps the methods of the live FieldCrypto object (and its CustomerKeys) in place. */
function instrument(fc: FieldCrypto): Probe {
  const probe: Probe = {
    sync: new Meter(), keys: new Meter(), seals: 0, opens: 0,
    reset() { this.sync = new Meter(); this.keys = new Meter(); this.seals = 0; this.opens = 0; },
  };
  const f = fc as unknown as Record<string, (...a: unknown[]) => unknown>;
  const wrapSync = (name: string, after?: (args: unknown[], result: unknown) => void) => {
    const orig = f[name]!;
    f[name] = (...args: unknown[]) => {
      const m = probe.sync;
      m.enter();
      try {
        const r = orig.apply(fc, args);
        after?.(args, r);
        return r;
      } finally { m.leave(); }
    };
  };
  wrapSync('encryptRow', (_a, r) => { probe.seals += countSealed(r as Record<string, unknown>); });
  wrapSync('decryptRow', (a) => { probe.opens += countSealed(a[1] as Record<string, unknown>); });
  wrapSync('sealBytes', () => { probe.seals++; });
  wrapSync('openBytes', () => { probe.opens++; });
  // The export opens values one by one (its rows are text fields, not row objects).
  wrapSync('decryptValue', (a) => { probe.opens += countSealed({ v: a[2] }); });
  wrapSync('blindIndex');
  wrapSync('labelledBlindIndex');
  // fc.keyFor/keysOf/decryptRows/unwrapKey delegate to these (and to decryptRow): not wrapped twice.
  const k = fc.keys as unknown as Record<string, unknown>;
  for (const name of Object.keys(k)) {
    const orig = k[name];
    if (typeof orig !== 'function') continue;
    if (name === 'unwrapKey') {
      // Synchronous (the export unwraps the key read with its rows): timed as a key operation.
      k[name] = (...args: unknown[]) => {
        probe.keys.enter();
        try { return (orig as (...a: unknown[]) => unknown).apply(fc.keys, args); } finally { probe.keys.leave(); }
      };
      continue;
    }
    k[name] = async (...args: unknown[]) => {
      const m = probe.keys;
      m.enter();
      try { return await (orig as (...a: unknown[]) => Promise<unknown>).apply(fc.keys, args); } finally { m.leave(); }
    };
  }
  return probe;
}

// ---------------------------------------------------------------------------------------------
// The floor: bare AES-256-GCM

function aesFloor(ops = 20_000): { sealNs: number; openNs: number } {
  const key = crypto.randomBytes(32);
  const aad = Buffer.from('lethe:customers.first_name:00000000-0000-0000-0000-000000000000');
  const plain = Buffer.from('Ada Lovelace 1234567');
  const sealed: Array<{ iv: Buffer; tag: Buffer; body: Buffer }> = [];
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) {
    const iv = crypto.randomBytes(12);
    const c = crypto.createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(aad);
    const body = Buffer.concat([c.update(plain), c.final()]);
    sealed.push({ iv, tag: c.getAuthTag(), body });
  }
  const t1 = process.hrtime.bigint();
  for (const s of sealed) {
    const d = crypto.createDecipheriv('aes-256-gcm', key, s.iv);
    d.setAAD(aad);
    d.setAuthTag(s.tag);
    Buffer.concat([d.update(s.body), d.final()]);
  }
  const t2 = process.hrtime.bigint();
  return { sealNs: Number(t1 - t0) / ops, openNs: Number(t2 - t1) / ops };
}

// ---------------------------------------------------------------------------------------------
// The app

async function call(app: FastifyInstance, method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown) {
  const res = await app.inject({
    method, url, headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { payload: JSON.stringify(body) } : {}),
  });
  return { status: res.statusCode, body: res.body };
}

async function expectStatus(p: ReturnType<typeof call>, status: number, what: string) {
  const r = await p;
  if (r.status !== status) throw new Error(`${what}: HTTP ${r.status} ${r.body.slice(0, 300)}`);
  return r;
}

const customerBody = (t: string) => ({
  salutation: 'Dr.', firstName: `Ada${t}`, lastName: `Lovelace${t}`, displayName: `Ada L ${t}`,
  email: `ada.${t}@example.com`, organization: `Analytical ${t}`, tin: `DE${t}`,
  lastLoginSuccessIp: '203.0.113.7', lastLoginFailureIp: '198.51.100.23', sdkRegisterIp: '2001:db8::1',
  metadata: { favouriteColour: `blue-${t}`, tier: 'gold' },
});

async function createCustomer(app: FastifyInstance, t: string): Promise<string> {
  const r = await expectStatus(call(app, 'POST', '/v1/customers', customerBody(t)), 201, 'POST /v1/customers');
  return (JSON.parse(r.body) as { id: string }).id;
}

/** The test suite's standard customer (test/helpers/fixtures.ts populate), without licenses. */
async function populate(app: FastifyInstance, id: string, t: string) {
  const add = async (collection: string, body: Record<string, unknown>) => {
    const r = await expectStatus(call(app, 'POST', `/v1/customers/${id}/${collection}`, body), 201, collection);
    return (JSON.parse(r.body) as { id: string }).id;
  };
  await add('addresses', {
    salutation: 'Ms', firstName: `F${t}`, lastName: `L${t}`, title: 'Prof', company: `Co${t}`, department: `Dep${t}`,
    line1: `1 Street ${t}`, line2: `Flat ${t}`, city: 'Berlin', postalCode: '10115', country: 'DE', phone: '+49 30 1234567',
  });
  await add('payment-methods', { brand: 'visa', cardId: `card_${t}`, last4: '4242', expMonth: 12, expYear: 2030, token: `tok_${t}` });
  await add('subscriptions', { plan: 'pro', giftRecipientEmail: `gift.${t}@example.org`, giftRecipientFirstName: `G${t}`, giftRecipientLastName: `R${t}` });
  await add('memberships', { name: 'team', role: 'admin', status: 'active' });
  await add('social-identities', { provider: 'github', externalId: `gh-${t}` });
  const inv = await add('invoices', { number: `INV-${t}`, amountMinor: 1999, currency: 'EUR' });
  await add('orders', { number: `ORD-${t}`, amountMinor: 1999, currency: 'EUR' });
  await add('transactions', { amountMinor: 1999, currency: 'EUR', status: 'succeeded', invoiceId: inv });
}

interface Phase { ops: number; wallMs: number; cryptoMs: number; keysMs: number; seals: number; opens: number }

async function measure(probe: Probe, ops: number, run: (i: number) => Promise<void>): Promise<Phase> {
  probe.reset();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) await run(i);
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  return {
    ops, wallMs, cryptoMs: Number(probe.sync.ns) / 1e6, keysMs: Number(probe.keys.ns) / 1e6,
    seals: probe.seals, opens: probe.opens,
  };
}

async function runBackend(kind: 'postgres' | 'pglite', o: EncryptionOptions) {
  const db = kind === 'postgres' ? await createDatabase('crypto') : null;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-bench-crypto-'));
  const config = loadConfig({
    LETHE_DATA_DIR: dataDir, LETHE_ADMIN_KEY: ADMIN_KEY, LETHE_MASTER_KEY: MASTER_KEY,
    LETHE_SCHEDULER: 'false', LETHE_DISPATCHER: 'false', LOG_LEVEL: 'silent',
    LETHE_RATE_LIMIT_PER_MINUTE: '10000000',
    ...(db ? { DATABASE_URL: db.url } : {}),
  });
  const runtime = await startRuntime(config, { log: pino({ level: 'silent' }), inMemory: true, withDefaultMetrics: false });
  const probe = instrument(runtime.ctx.crypto);
  const services = createServices(runtime.ctx);
  const app = await buildApp(runtime.ctx, services);
  try {
    const tag = crypto.randomBytes(3).toString('hex');
    // Populated customers: the deleted ones, and the ones read.
    const populated: string[] = [];
    const nPop = Math.max(o.deletes, Math.min(o.reads, 50));
    for (let i = 0; i < nPop; i++) {
      const t = `${tag}p${i}`;
      const id = await createCustomer(app, t);
      await populate(app, id, t);
      populated.push(id);
    }
    for (let i = nPop; i < o.exportRows; i++) await createCustomer(app, `${tag}e${i}`);
    log(`encryption ${kind}: ${nPop} populated + ${Math.max(0, o.exportRows - nPop)} plain customers created`);

    // Warm-up: JIT and caches, not measured.
    for (let i = 0; i < 10; i++) await expectStatus(call(app, 'GET', `/v1/customers/${populated[i % nPop]}`), 200, 'read');
    const read = await measure(probe, o.reads, async (i) => {
      await expectStatus(call(app, 'GET', `/v1/customers/${populated[i % nPop]}`), 200, 'GET /v1/customers/{id}');
    });
    const exportRows = Math.max(o.exportRows, nPop);
    let lines = 0;
    const exp = await measure(probe, 1, async () => {
      const r = await expectStatus(call(app, 'GET', '/v1/exports/customers?format=jsonl'), 200, 'export');
      lines = r.body.split('\n').filter((l) => l.length > 0).length;
    });
    if (lines !== exportRows) throw new Error(`export: ${lines} lines, expected ${exportRows}`);
    const del = await measure(probe, o.deletes, async (i) => {
      await expectStatus(call(app, 'DELETE', `/v1/customers/${populated[i]}`), 204, 'DELETE /v1/customers/{id}');
    });
    return { read, exp, del, exportRows };
  } finally {
    await Promise.all(services.background.map((b) => b.stop()));
    await app.close();
    await runtime.close();
    await db?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(config.keyringDir, { recursive: true, force: true });
  }
}

export async function benchEncryption(o: EncryptionOptions): Promise<GroupResult> {
  const rows: Row[] = [];
  const numbers: Record<string, number> = {};
  const floor = aesFloor();
  numbers.aes_gcm_seal_us = round(floor.sealNs / 1000, 2);
  numbers.aes_gcm_open_us = round(floor.openNs / 1000, 2);
  log(`encryption: bare AES-256-GCM seal ${numbers.aes_gcm_seal_us} µs, open ${numbers.aes_gcm_open_us} µs`);

  for (const kind of o.pglite ? ['postgres', 'pglite'] as const : ['postgres'] as const) {
    const r = await runBackend(kind, o);
    const prefix = kind === 'postgres' ? 'crypto' : 'crypto_pglite';
    const phases: Array<[string, Phase, number, string]> = [
      ['delete', r.del, r.del.ops, `${o.deletes} populated customers, one at a time`],
      ['read', r.read, r.read.ops, 'GET /v1/customers/{id}, one at a time'],
      ['export', r.exp, r.exportRows, `GET /v1/exports/customers, ${r.exportRows} rows (per row)`],
    ];
    for (const [name, p, per, what] of phases) {
      const wallMs = p.wallMs / per;
      const cryptoMs = p.cryptoMs / per;
      const keysMs = p.keysMs / per;
      const floorMs = (p.seals * floor.sealNs + p.opens * floor.openNs) / 1e6 / per;
      const share = p.cryptoMs / p.wallMs;
      const digits = name === 'export' ? 4 : 3;
      numbers[`${prefix}_${name}_ms`] = round(wallMs, digits);
      numbers[`${prefix}_${name}_crypto_ms`] = round(cryptoMs, digits);
      numbers[`${prefix}_${name}_keys_ms`] = round(keysMs, digits);
      numbers[`${prefix}_${name}_floor_ms`] = round(floorMs, digits + 1);
      numbers[`${prefix}_${name}_share`] = round(share, 3);
      rows.push({
        figure: `${prefix}_${name}_crypto_ms`, value: round(cryptoMs, digits), unit: 'ms',
        peer: { figure: 'aes_floor_ms', value: round(floorMs, digits + 1) },
        // The ratio is the encryption share: time inside the crypto module / wall time (no goal).
        ratio: { value: round(share, 3), goal: '', met: null },
        note: `${what}: wall ${round(wallMs, digits)} ms/op; key lookups ${round(keysMs, digits)} ms/op `
          + `(${round(p.keysMs / p.wallMs * 100, 1)}%); ${round(p.seals / per, 2)} seals + ${round(p.opens / per, 2)} opens per op`,
      });
    }
  }
  rows.push({
    figure: 'aes_gcm_seal_us', value: numbers.aes_gcm_seal_us, unit: 'µs',
    note: `bare node:crypto loop; open ${numbers.aes_gcm_open_us} µs`,
  });
  return { rows, numbers, commands: [] };
}
