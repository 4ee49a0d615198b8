// Crypto-shredding (SPEC "Personal data at rest"): no file of the data directory, of the
// PostgreSQL database's directory, of pg_wal or of a pg_dump holds a customer's personal data in
// clear, before or after deletion.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeNeeding } from './helpers/tools.ts';
import { add } from './helpers/fixtures.ts';
import { canaryCustomer } from './helpers/canary-customer.ts';
import { client, createTestEnv, TEST_DB, type Client, type TestEnv } from './helpers/runtime.ts';

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv({ onDisk: true });
  api = client(env.app, env.operatorKey);
});
afterAll(async () => env?.close());

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile()).map((d) => path.join(d.parentPath, d.name));
}

/** Every file that may hold the database's data, by kind; the dump as one more "file". */
async function sources(): Promise<Array<{ name: string; read(): Buffer }>> {
  const out: Array<{ name: string; read(): Buffer }> = filesUnder(env.dataDir).map((f) => ({ name: f, read: () => fs.readFileSync(f) }));
  if (TEST_DB === 'postgres') {
    const r = await sql<{ d: string; f: string }>`SELECT current_setting('data_directory') AS d, pg_relation_filepath('customers') AS f`
      .execute(env.ctx.db.withoutPlugins());
    const { d, f } = r.rows[0]!;
    const dbDir = path.join(d, path.dirname(f));
    expect(fs.existsSync(dbDir), `database directory ${dbDir} readable (run as the postgres or root user)`).toBe(true);
    for (const file of [...filesUnder(dbDir), ...filesUnder(path.join(d, 'pg_wal'))]) {
      out.push({ name: file, read: (): Buffer => { try { return fs.readFileSync(file); } catch { return Buffer.alloc(0); } } });
    }
    let dump: Buffer;
    try {
      dump = execFileSync('pg_dump', ['--no-owner', env.databaseUrl!], { maxBuffer: 512 * 1024 * 1024 });
    } catch (error) {
      if (process.env.CI === 'true') throw error;
      throw new Error(`pg_dump is needed by this test: ${(error as Error).message}`);
    }
    out.push({ name: 'pg_dump', read: () => dump });
  }
  return out;
}

async function checkpoint() {
  await sql`CHECKPOINT`.execute(env.ctx.db);
}

async function filesHolding(needles: string[]): Promise<Record<string, string[]>> {
  const hits: Record<string, string[]> = {};
  for (const s of await sources()) {
    const data = s.read();
    const found = needles.filter((n) => data.includes(Buffer.from(n)));
    if (found.length) hits[s.name] = found;
  }
  return hits;
}

// On PostgreSQL it needs a pg_dump of the server's version (the embedded 18 step: the system server's run covers it).
(TEST_DB === 'postgres' ? describeNeeding('pg_dump') : describe)('personal data at rest: no canary in clear in any file', () => {
  it('before and after deletion: data directory' + (TEST_DB === 'postgres' ? ', database directory, pg_wal and pg_dump' : ''), async () => {
    const prefix = `cnry${crypto.randomBytes(6).toString('hex')}`;
    const c = await canaryCustomer(api, prefix);
    // The scanner sees what is stored in clear: an order number (not personal) is found.
    const marker = `${prefix}order`;
    await add(api, c.id, 'orders', { number: marker, amountMinor: 1, currency: 'EUR' });
    await checkpoint();

    const before = await filesHolding([marker, ...c.needles]);
    const withMarker = Object.entries(before).filter(([, n]) => n.includes(marker)).map(([f]) => f);
    expect(withMarker.length, 'the scan finds a non-personal value in the files').toBeGreaterThan(0);
    if (TEST_DB === 'postgres') expect(withMarker).toContain('pg_dump');
    // Every personal canary starts with prefix + 'x' (kept fields: prefix + 'k'); IPs are searched as they are.
    const needles = [`${prefix}x`, ...c.ips];
    expect(await filesHolding([...needles, `${prefix}k`]), 'personal canaries in clear before deletion').toEqual({});

    // Everything reads back through the API.
    const read = await api.get(`/v1/customers/${c.id}`);
    expect(read.body).toMatchObject({ email: c.email, tin: c.body.tin, metadata: c.body.metadata, lastLoginSuccessIp: c.ips[0] });
    expect((await api.get(`/v1/customers?email=${encodeURIComponent(c.email.toUpperCase())}`)).body.data.map((x: { id: string }) => x.id)).toEqual([c.id]);
    const exported = await api.get(`/v1/customers/${c.id}/export?includePhoto=true`);
    expect(exported.body.collections.addresses[0]).toMatchObject(c.address);
    expect(Buffer.from(exported.body.profilePhoto.dataBase64, 'base64').equals(c.photo)).toBe(true);
    const csv = await env.app.inject({ method: 'GET', url: '/v1/exports/customers?format=csv', headers: { authorization: `Bearer ${env.operatorKey}` } });
    expect(csv.body).toContain(c.email);

    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
    await checkpoint();
    expect(await filesHolding(needles), 'personal canaries in clear after deletion').toEqual({});
    // The values the policy keeps (address.city, address.country) are written in clear at redaction, as SPEC says.
    if (TEST_DB === 'postgres') expect(Object.keys(await filesHolding([`${prefix}kcity`]))).toContain('pg_dump');
    const receipt = await api.get(`/v1/deletions/${c.id}`);
    expect(receipt.body.keyDestroyedAt).toBe(env.clock.now().toISOString());
    expect(Date.parse(receipt.body.unreadableEverywhereBy)).toBeGreaterThan(env.clock.now().getTime());
    expect(receipt.body.unreadableEverywhereConfirmed).toBe(false);
    // Its key and blind-index entry are gone with it.
    expect(await env.ctx.db.selectFrom('customerKeys').select('customerId').where('customerId', '=', c.id).execute()).toEqual([]);
    const row = await env.ctx.db.selectFrom('customers').select('emailBidx').where('id', '=', c.id).executeTakeFirstOrThrow();
    expect(row.emailBidx).toBeNull();
  });
});
