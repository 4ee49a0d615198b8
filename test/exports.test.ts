import http from 'node:http';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { parse as parseCsv } from 'csv-parse/sync';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createAppKey, createApplication, createCustomer, customerBody, populate } from './helpers/fixtures.ts';
import fc from 'fast-check';
import { csvCell, csvLine } from '../src/exports/csv.ts';
import { exportColumns } from '../src/exports/exports.service.ts';

type Rec = Record<string, any>;

const jsonl = (raw: string): Rec[] => raw.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Rec);
const PSN = /^psn_[0-9a-f]{32}$/;
/** In every value unique to the customer deleted with automatic personal data deletion off (values stay stored). */
const TAG = 'q7tagdeleted';
/** Likewise for the customer deleted with it on (values redacted at deletion). */
const TAG2 = 'k3tagredacted';

/** Every string value a customer body holds, metadata values included. */
function originalValues(body: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const v of Object.values(body)) {
    if (typeof v === 'string') out.push(v);
    else if (v && typeof v === 'object') for (const m of Object.values(v)) if (typeof m === 'string') out.push(m);
  }
  return out;
}

describe('dataset exports', () => {
  let env: TestEnv;
  let api: Client;
  let living: Rec;
  let tricky: Rec;
  let deletedBody: ReturnType<typeof customerBody>;
  let deleted: Rec;
  let redacted: Rec;
  let deletedAt: string;
  let redactedAt: string;
  let livingIds: Awaited<ReturnType<typeof populate>>;
  let deletedIds: Awaited<ReturnType<typeof populate>>;

  beforeAll(async () => {
    env = await createTestEnv();
    api = client(env.app, env.operatorKey);
    const app = await createApplication(api);
    living = await createCustomer(api);
    livingIds = await populate(api, living.id as string, [app.id]);
    tricky = await createCustomer(api, {
      firstName: 'Quote "Q", comma',
      lastName: 'Multi\nline\r\nname',
      displayName: '=HYPERLINK("http://evil.example","x")',
      organization: '+cmd', tin: '-2+3', salutation: '@SUM(A1)',
      metadata: { note: 'a,b\n"c"', plain: 'x' },
    });
    deletedBody = customerBody(TAG);
    deleted = await createCustomer(api, deletedBody);
    deletedIds = await populate(api, deleted.id as string, [app.id]);
    redacted = await createCustomer(api, customerBody(TAG2));
    await populate(api, redacted.id as string);

    // Deleted with automatic personal data deletion off: every original value is still in the database,
    // so only the export's own pseudonymization keeps it out.
    expect((await api.patch('/v1/settings', { automaticPersonalDataDeletion: false })).status).toBe(200);
    env.clock.advance(60_000);
    deletedAt = env.clock.now().toISOString();
    expect((await api.del(`/v1/customers/${deleted.id}`)).status).toBe(204);
    // Stored encrypted under the customer's key, which survives with the data while the setting is off.
    const stored = await env.ctx.db.selectFrom('customers').selectAll().where('id', '=', deleted.id as string).executeTakeFirstOrThrow();
    const dek = (await env.ctx.crypto.keysOf(env.ctx.db, [deleted.id as string])).get(deleted.id as string);
    expect(dek).toBeDefined();
    expect(env.ctx.crypto.decryptRow('customers', stored, stored.id, dek).email).toBe(deletedBody.email);

    expect((await api.patch('/v1/settings', { automaticPersonalDataDeletion: true })).status).toBe(200);
    env.clock.advance(60_000);
    redactedAt = env.clock.now().toISOString();
    expect((await api.del(`/v1/customers/${redacted.id}`)).status).toBe(204);
  });
  afterAll(async () => env?.close());

  /** The export as text (the JSON client helper would try to parse JSON Lines as one document). */
  async function exportOf(dataset: string, format = 'jsonl') {
    const res = await env.app.inject({
      method: 'GET', url: `/v1/exports/${dataset}${format === 'jsonl' ? '' : `?format=${format}`}`,
      headers: { authorization: `Bearer ${env.operatorKey}` },
    });
    expect(res.statusCode, res.body.slice(0, 500)).toBe(200);
    return { raw: res.body, headers: res.headers };
  }

  it('exports living customers as stored, with the data map\'s columns in camelCase', async () => {
    const r = await exportOf('customers');
    expect(r.headers['content-type']).toMatch(/^application\/x-ndjson/);
    const rows = jsonl(r.raw);
    expect(rows).toHaveLength(4);
    const names = exportColumns('customers').map((c) => c.name);
    for (const row of rows) expect(Object.keys(row)).toEqual(names);
    expect(names).not.toContain('profilePhotoKey');

    const row = rows.find((x) => x.id === living.id)!;
    const stored = (await api.get(`/v1/customers/${living.id}`)).body as Rec;
    for (const field of ['salutation', 'firstName', 'lastName', 'displayName', 'email', 'organization', 'tin',
      'lastLoginSuccessIp', 'lastLoginFailureIp', 'sdkRegisterIp', 'metadata', 'legalHold', 'createdAt', 'updatedAt']) {
      expect(row[field], field).toEqual(stored[field]);
    }
    expect(row).toMatchObject({ deleted: false, deletedAt: null });
  });

  it('pseudonymizes deleted customers: no id, no original value, identifying fields keyed, others null', async () => {
    const r = await exportOf('customers');
    // Nowhere in the export: not the ids, not one value unique to either customer.
    for (const needle of [deleted.id, redacted.id, TAG, TAG2]) expect(r.raw).not.toContain(needle);

    const rows = jsonl(r.raw).filter((x) => x.deleted === true);
    expect(rows).toHaveLength(2);
    expect(rows.find((x) => x.deletedAt === redactedAt)!.id).toMatch(PSN);
    const row = rows.find((x) => x.deletedAt === deletedAt)!;
    // Nor any value they shared with others (IP addresses, salutation, metadata), in their row.
    for (const value of originalValues(deletedBody)) expect(JSON.stringify(row), value).not.toContain(value);
    expect(row.id).toMatch(PSN);
    // Identifying fields with a stored value (masked by redaction or not) → pseudonyms; the tin is nullified
    // by the default redaction policy, and a null stays null.
    for (const field of ['firstName', 'lastName', 'displayName', 'email']) expect(row[field], field).toMatch(PSN);
    expect(row.tin === null || PSN.test(row.tin as string), String(row.tin)).toBe(true);
    // Distinct per field, so no two fields can be matched to each other.
    expect(new Set(['id', 'firstName', 'lastName', 'displayName', 'email'].map((f) => row[f])).size).toBe(5);
    for (const field of ['salutation', 'organization', 'lastLoginSuccessIp', 'lastLoginFailureIp', 'sdkRegisterIp', 'metadata']) {
      expect(row[field], field).toBeNull();
    }
    expect(row.legalHold).toBe(false);

    // The same, driven by the data map: any column classified later is covered too.
    for (const c of exportColumns('customers')) {
      if (c.treatment === 'customer') expect(row[c.name], c.name).toMatch(PSN);
      if (c.treatment === 'pseudonym') expect(row[c.name] === null || PSN.test(String(row[c.name])), c.name).toBe(true);
      if (c.treatment === 'null') expect(row[c.name], c.name).toBeNull();
    }
    const identifying = exportColumns('customers').filter((c) => c.treatment === 'pseudonym').map((c) => c.name);
    expect(identifying).toEqual(expect.arrayContaining(['firstName', 'lastName', 'displayName', 'email', 'tin']));
  });

  it('keeps pseudonyms stable across exports and equal between customers, transactions and activity', async () => {
    const first = jsonl((await exportOf('customers')).raw).find((x) => x.deletedAt === deletedAt)!;
    const second = jsonl((await exportOf('customers')).raw).find((x) => x.deletedAt === deletedAt)!;
    expect(first.id).toMatch(PSN);
    expect(second).toEqual(first);

    const tx = await exportOf('transactions');
    for (const needle of [deleted.id, redacted.id, TAG, TAG2]) expect(tx.raw).not.toContain(needle);
    const txRows = jsonl(tx.raw);
    expect(Object.keys(txRows[0]!)).toEqual(exportColumns('transactions').map((c) => c.name));
    expect(Object.keys(txRows[0]!)).not.toContain('customerRef');
    // The deleted customer's transaction stays, amounts intact, joined by the same pseudonym.
    const theirs = txRows.find((x) => x.id === deletedIds.transactionId)!;
    expect(theirs).toMatchObject({ customerId: first.id, amountMinor: 1999, currency: 'EUR', status: 'succeeded', invoiceId: deletedIds.invoiceId });
    // Not the database's own reference either: exports have their own key.
    const stored = await env.ctx.db.selectFrom('transactions').select('customerRef').where('id', '=', deletedIds.transactionId).executeTakeFirstOrThrow();
    expect(theirs.customerId).not.toBe(stored.customerRef);
    const mine = txRows.find((x) => x.id === livingIds.transactionId)!;
    expect(mine).toMatchObject({ customerId: living.id, amountMinor: 1999, currency: 'EUR' });

    const act = await exportOf('activity');
    for (const needle of [deleted.id, redacted.id, TAG, TAG2]) expect(act.raw).not.toContain(needle);
    const actRows = jsonl(act.raw);
    // Not redacted, so their whole log is still stored (customer.created holds their e-mail): all pseudonymized.
    const gone = actRows.filter((x) => x.customerId === first.id);
    expect(gone.map((x) => x.type)).toEqual(expect.arrayContaining(['customer.created', 'customer.deleted']));
    for (const entry of gone) expect(entry.details).toBeNull();
    // Redacted at deletion: only the customer.deleted entry remains, pseudonymized.
    const redactedId = jsonl((await exportOf('customers')).raw).find((x) => x.deletedAt === redactedAt)!.id as string;
    expect(actRows.filter((x) => x.customerId === redactedId).map((x) => x.type)).toEqual(['customer.deleted']);
    const alive = actRows.filter((x) => x.customerId === living.id);
    expect(alive.map((x) => x.type)).toContain('customer.created');
    expect(alive.length).toBeGreaterThan(5);
  });

  it('writes CSV with a header row that parses back to the JSONL records', async () => {
    for (const dataset of ['customers', 'transactions', 'activity']) {
      const csv = await exportOf(dataset, 'csv');
      expect(csv.headers['content-type']).toMatch(/^text\/csv/);
      expect(csv.headers['content-disposition']).toBe(`attachment; filename="${dataset}.csv"`);
      const records = parseCsv(csv.raw, { columns: true }) as Record<string, string>[];
      const lines = jsonl((await exportOf(dataset)).raw);
      const header = parseCsv(csv.raw, { to_line: 1 })[0] as string[];
      expect(header).toEqual(exportColumns(dataset as 'customers').map((c) => c.name));
      expect(records).toHaveLength(lines.length);
      // Each CSV cell is the JSONL value written as text (formula characters neutralised).
      records.forEach((rec, i) => {
        for (const name of header) {
          const expected = csvCell(lines[i]![name]);
          const unquoted = expected.startsWith('"') ? expected.slice(1, -1).replaceAll('""', '"') : expected;
          expect(rec[name], `${dataset}[${i}].${name}`).toBe(unquoted);
        }
      });
    }
    const customers = parseCsv((await exportOf('customers', 'csv')).raw, { columns: true }) as Record<string, string>[];
    const t = customers.find((x) => x.id === tricky.id)!;
    expect(t.firstName).toBe('Quote "Q", comma');
    expect(t.lastName).toBe('Multi\nline\r\nname');
    expect(t.displayName).toBe('\'=HYPERLINK("http://evil.example","x")');
    expect(t.organization).toBe("'+cmd");
    expect(t.tin).toBe("'-2+3");
    expect(t.salutation).toBe("'@SUM(A1)");
    expect(JSON.parse(t.metadata!)).toEqual({ note: 'a,b\n"c"', plain: 'x' });
    expect(t.deleted).toBe('false');
  });

  it('answers problem+json for an unknown dataset or format, and refuses non-operators', async () => {
    const unknown = await api.get('/v1/exports/invoices');
    expect(unknown.status).toBe(404);
    expect(unknown.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(unknown.body).toMatchObject({ code: 'not_found', status: 404 });

    const bad = await api.get('/v1/exports/customers?format=xml');
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(bad.body).toMatchObject({ code: 'validation_failed', status: 400 });
    expect((await api.get('/v1/exports/customers?format=csv&extra=1')).body.code).toBe('validation_failed');

    expect((await client(env.app, null).get('/v1/exports/customers')).status).toBe(401);
    const app = await createApplication(api);
    const appKey = await createAppKey(api, [app.id]);
    expect((await client(env.app, appKey).get('/v1/exports/customers')).status).toBe(403);
  });

  it('records who exported what in the audit log (ids only) and counts exports', async () => {
    await exportOf('transactions', 'csv');
    const audit = await api.get('/v1/audit-events?type=export.created&limit=500');
    const events = (audit.body.data as Rec[]).filter((e) => e.type === 'export.created');
    expect(events.at(-1)).toMatchObject({ data: { dataset: 'transactions', format: 'csv' } });
    const counted = (await env.ctx.metrics.registry.getSingleMetric('lethe_exports_total')!.get()).values
      .find((v) => v.labels.dataset === 'transactions' && v.labels.format === 'csv' && v.labels.outcome === 'completed');
    expect(counted?.value).toBeGreaterThanOrEqual(1);
  });

  it('shows a record added after the deletion only under the living customer', async () => {
    const extra = await add(api, living.id as string, 'transactions', { amountMinor: 5, currency: 'EUR', status: 'failed' });
    const rows = jsonl((await exportOf('transactions')).raw);
    expect(rows.find((x) => x.id === extra.id)).toMatchObject({ customerId: living.id, amountMinor: 5 });
  });
});

/** The collector, so samples measure what is retained rather than garbage not yet collected. */
function collector(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

describe('a 100,000-row export', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv();
    // About 1 KB per row, so the export (~100 MB) dwarfs any bound a streaming export stays under.
    await sql`
      INSERT INTO customers (first_name, last_name, display_name, email, organization, metadata, created_at, updated_at)
      SELECT 'First' || g, 'Last' || g, repeat('d', 300) || g, 'user' || g || '@example.com', repeat('o', 300),
             jsonb_build_object('note', repeat('m', 300)), now(), now()
      FROM generate_series(1, 100000) AS g`.execute(env.ctx.db);
  }, 300_000);
  afterAll(async () => env?.close());

  it('streams through a listening server with heap not growing with rows', async () => {
    await env.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = env.app.server.address() as AddressInfo;
    const samples: number[] = [];
    const rssSamples: number[] = [];
    let bytes = 0;
    let lines = 0;
    let chunks = 0;
    let lastLine = '';
    const gc = collector();
    gc();
    // Heap plus memory outside it (Buffers live there): what a buffered export would fill.
    const used = (m: NodeJS.MemoryUsage) => m.heapUsed + m.external;
    const baseline = used(process.memoryUsage());
    await new Promise<void>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/v1/exports/customers', headers: { authorization: `Bearer ${env.operatorKey}` } }, (res) => {
        if (res.statusCode !== 200) { reject(new Error(`status ${res.statusCode}`)); return; }
        let tail = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          bytes += Buffer.byteLength(chunk);
          const parts = (tail + chunk).split('\n');
          tail = parts.pop()!;
          lines += parts.length;
          if (parts.length) lastLine = parts[parts.length - 1]!;
          if (++chunks % 20 === 0) {
            gc();
            const m = process.memoryUsage();
            samples.push(used(m));
            rssSamples.push(m.rss);
          }
        });
        res.on('end', () => { if (tail) { lines++; lastLine = tail; } resolve(); });
        res.on('error', reject);
      }).on('error', reject);
    });
    expect(lines).toBe(100_000);
    expect(JSON.parse(lastLine)).toHaveProperty('email');
    expect(bytes).toBeGreaterThan(90 * 1024 * 1024);
    expect(samples.length).toBeGreaterThan(20);
    const peakGrowth = Math.max(...samples) - baseline;
    const mb = (n: number) => Math.round(n / 1024 / 1024);
    console.log(`export: ${mb(bytes)} MB, ${lines} rows; heap+external growth peak ${mb(peakGrowth)} MB; rss ${mb(Math.min(...rssSamples))}–${mb(Math.max(...rssSamples))} MB`);
    // A buffered export would hold the whole ~130 MB body (measured: +264 MB); a streamed one a batch or two.
    expect(peakGrowth).toBeLessThan(32 * 1024 * 1024);
    // And flat: the last third of the stream holds no more than the first third did.
    const third = Math.floor(samples.length / 3);
    const early = Math.max(...samples.slice(0, third));
    const late = Math.max(...samples.slice(-third));
    expect(late - early).toBeLessThan(10 * 1024 * 1024);
  }, 300_000);

  it('stops reading when the client goes away', async () => {
    const metric = (name: string) => env.ctx.metrics.registry.getSingleMetric(name)!.get();
    const rowsBefore = (await metric('lethe_export_rows_total')).values.find((v) => v.labels.dataset === 'customers')?.value ?? 0;
    const { port } = env.app.server.address() as AddressInfo;
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/v1/exports/customers', headers: { authorization: `Bearer ${env.operatorKey}` } }, (res) => {
        res.once('data', () => { req.destroy(); resolve(); });
      });
      req.on('error', (e) => { if (!req.destroyed) reject(e); });
    });
    // The server notices the closed socket and ends the export; wait for that event (not for a time).
    let aborted = 0;
    for (let i = 0; i < 400 && aborted === 0; i++) {
      aborted = (await metric('lethe_exports_total')).values.find((v) => v.labels.outcome === 'aborted')?.value ?? 0;
      if (aborted === 0) await new Promise((r) => setTimeout(r, 25));
    }
    expect(aborted).toBe(1);
    const read = ((await metric('lethe_export_rows_total')).values.find((v) => v.labels.dataset === 'customers')?.value ?? 0) - rowsBefore;
    // A few batches were read ahead into socket buffers; nowhere near the 100,000 rows.
    expect(read).toBeGreaterThan(0);
    expect(read).toBeLessThan(20_000);
  }, 60_000);
});

describe('CSV writer', () => {
  it('round-trips any text through a CSV parser, formula starts neutralised', () => {
    const char = fc.constantFrom('a', 'Z', '0', ' ', ',', '"', '\n', '\r', '=', '+', '-', '@', '\t', "'", 'é', '😀');
    fc.assert(fc.property(fc.array(fc.string({ unit: char, maxLength: 12 }), { minLength: 2, maxLength: 6 }), (cells) => {
      const parsed = parseCsv(csvLine(cells), { relax_column_count: false }) as string[][];
      expect(parsed).toEqual([cells.map((c) => (/^[=+\-@\t\r]/.test(c) ? `'${c}` : c))]);
    }), { numRuns: 500 });
  });

  it('writes numbers, booleans, dates, null and objects as such', () => {
    expect(csvLine([-500, true, null, undefined, new Date('2026-01-02T03:04:05Z'), { a: '1,2' }, 'x']))
      .toBe('-500,true,,,2026-01-02T03:04:05.000Z,"{""a"":""1,2""}",x\r\n');
  });
});
