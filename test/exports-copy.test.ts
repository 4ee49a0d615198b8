import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { parse as parseCsv } from 'csv-parse/sync';
import { client, createTestEnv, TEST_DB, type TestEnv } from './helpers/runtime.ts';
import { add, createApplication, createCustomer, customerBody, populate } from './helpers/fixtures.ts';
import { defOf, DATASETS, exportColumns } from '../src/exports/export-datasets.ts';
import { createFormatter } from '../src/exports/export-format.ts';
import { batchedRows, copyLimit, exportRows, type Fields } from '../src/exports/export-source.ts';
import { pgPoolOf } from '../src/db/database.ts';
import { exportSelect } from '../src/exports/exports.repo.ts';

// The export reads its rows as text fields (COPY's text format on PostgreSQL, escaped; text casts on
// PGlite) and writes them back as JSON and CSV: every character a value can hold must come through.
type Rec = Record<string, any>;
const jsonl = (raw: string): Rec[] => raw.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Rec);
/** Tab, backslashes (also before n, t and N: COPY's own escapes), LF, CRLF, quotes, comma, non-ASCII, U+2028, an astral character. */
const T = 'a\tb\\c\nd\r\ne "q", é 😀 \u2028 \\N \\t \\\\ end\\';
const TAB_FIRST = `\t${T}`;

async function exportOf(env: TestEnv, dataset: string, format = 'jsonl') {
  const res = await env.app.inject({
    method: 'GET', url: `/v1/exports/${dataset}?format=${format}`, headers: { authorization: `Bearer ${env.operatorKey}` },
  });
  expect(res.statusCode, res.body.slice(0, 300)).toBe(200);
  return res.body;
}

describe('export: values with tabs, newlines, backslashes and unicode', () => {
  let env: TestEnv;
  let customer: Rec;
  let invoiceId: string;
  let activityId: string;

  beforeAll(async () => {
    env = await createTestEnv();
    const api = client(env.app, env.operatorKey);
    customer = await createCustomer(api);
    await populate(api, customer.id as string);
    const db = env.ctx.db;
    // Clear values (as written before encryption at rest) pass as read: text, jsonb keys and values, a json column.
    await sql`UPDATE customers SET organization = ${T}, external_id = ${TAB_FIRST},
      metadata = jsonb_build_object(${T}::text, ${T}::text, 'plain', 'x') WHERE id = ${customer.id}`.execute(db);
    invoiceId = (await sql<{ id: string }>`UPDATE invoices SET number = ${T}, currency = ${TAB_FIRST}
      WHERE id = (SELECT id FROM invoices WHERE customer_id = ${customer.id} LIMIT 1) RETURNING id`.execute(db)).rows[0]!.id;
    activityId = (await sql<{ id: string }>`UPDATE activity SET details = jsonb_build_object('note', ${T}::text, ${T}::text, 1)
      WHERE id = (SELECT id FROM activity WHERE customer_id = ${customer.id} LIMIT 1) RETURNING id`.execute(db)).rows[0]!.id;
  });
  afterAll(async () => env?.close());

  it('JSONL: text, jsonb keys and values, in every dataset holding them', async () => {
    const c = jsonl(await exportOf(env, 'customers')).find((r) => r.id === customer.id)!;
    expect(c.organization).toBe(T);
    expect(c.externalId).toBe(TAB_FIRST);
    expect(c.metadata).toEqual({ [T]: T, plain: 'x' });
    const inv = jsonl(await exportOf(env, 'invoices')).find((r) => r.id === invoiceId)!;
    expect(inv).toMatchObject({ number: T, currency: TAB_FIRST });
    const act = jsonl(await exportOf(env, 'activity')).find((r) => r.id === activityId)!;
    expect(act.details).toEqual({ note: T, [T]: 1 });
  });

  it('CSV: the same values, a tab first neutralised', async () => {
    const c = (parseCsv(await exportOf(env, 'customers', 'csv'), { columns: true }) as Rec[]).find((r) => r.id === customer.id)!;
    expect(c.organization).toBe(T);
    expect(c.externalId).toBe(`'${TAB_FIRST}`);
    expect(JSON.parse(c.metadata as string)).toEqual({ [T]: T, plain: 'x' });
    const inv = (parseCsv(await exportOf(env, 'invoices', 'csv'), { columns: true }) as Rec[]).find((r) => r.id === invoiceId)!;
    expect(inv).toMatchObject({ number: T, currency: `'${TAB_FIRST}` });
    const act = (parseCsv(await exportOf(env, 'activity', 'csv'), { columns: true }) as Rec[]).find((r) => r.id === activityId)!;
    expect(JSON.parse(act.details as string)).toEqual({ note: T, [T]: 1 });
  });
});

describe.skipIf(TEST_DB !== 'postgres')('COPY and keyset batches give the same bytes (PostgreSQL, where both run)', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv();
    const api = client(env.app, env.operatorKey);
    const app = await createApplication(api);
    const living = await createCustomer(api);
    await populate(api, living.id as string, [app.id]);
    const removed = await add(api, living.id as string, 'addresses', { firstName: 'Gone', line1: '9 Removed Rd', city: 'Oslo' });
    expect((await api.del(`/v1/customers/${living.id}/addresses/${removed.id}`)).status).toBe(204);
    for (const auto of [false, true]) {
      expect((await api.patch('/v1/settings', { automaticPersonalDataDeletion: auto })).status).toBe(200);
      const gone = await createCustomer(api, customerBody());
      await populate(api, gone.id as string, [app.id]);
      env.clock.advance(60_000);
      expect((await api.del(`/v1/customers/${gone.id}`)).status).toBe(204);
    }
    await sql`UPDATE customers SET organization = ${T}, metadata = jsonb_build_object(${T}::text, ${T}::text) WHERE id = ${living.id}`.execute(env.ctx.db);
    // More than a batch, with timestamps a microsecond apart (the keyset position must not skip or repeat).
    await sql`INSERT INTO transactions (customer_id, amount_minor, currency, status, created_at, updated_at)
      SELECT ${living.id}, g, 'EUR', 'failed', now() - g * interval '1 microsecond', now() FROM generate_series(1, 2500) g`.execute(env.ctx.db);
  }, 120_000);
  afterAll(async () => env?.close());

  it('for every dataset and format', async () => {
    const text = async (rows: AsyncGenerator<Fields[]>, format: (chunk: Fields[]) => string) => {
      let out = '';
      for await (const chunk of rows) out += format(chunk);
      return out;
    };
    const { db, secrets } = env.ctx;
    for (const dataset of DATASETS) {
      const def = defOf(dataset);
      const columns = exportColumns(dataset);
      const select = await exportSelect(db, def, columns);
      for (const format of ['jsonl', 'csv'] as const) {
        const formatter = () => createFormatter(def, columns, select.kinds, format, { pseudonymKey: secrets.pseudonymKey, exportKey: secrets.exportKey, crypto: env.ctx.crypto });
        const copied = await text(exportRows(db, def, select), formatter());
        const batched = await text(batchedRows(db, def, select), formatter());
        expect(copied.length, `${dataset} ${format}`).toBeGreaterThan(0);
        expect(copied, `${dataset} ${format}`).toBe(batched);
      }
    }
  }, 120_000);
});

describe.skipIf(TEST_DB !== 'postgres')('a COPY export the client leaves part-way (PostgreSQL)', () => {
  let env: TestEnv;
  const ROWS = 60_000;
  beforeAll(async () => {
    env = await createTestEnv();
    // About 1 KB per row: far more than the socket buffers hold, so the COPY is mid-way when the client leaves.
    await sql`INSERT INTO customers (first_name, last_name, display_name, email, organization, created_at, updated_at)
      SELECT 'First' || g, 'Last' || g, repeat('d', 300) || g, 'user' || g || '@example.com', repeat('o', 600), now(), now()
      FROM generate_series(1, ${ROWS}) AS g`.execute(env.ctx.db);
  }, 120_000);
  afterAll(async () => env?.close());

  const copies = async () => Number((await sql<{ n: string }>`SELECT count(*)::text AS n FROM pg_stat_activity
    WHERE datname = current_database() AND backend_type = 'client backend' AND query LIKE 'COPY (SELECT%'`.execute(env.ctx.db)).rows[0]!.n);
  /** COPYs running now (a pool connection that ran one and went back idle still shows it as its last query). */
  const activeCopies = async () => Number((await sql<{ n: string }>`SELECT count(*)::text AS n FROM pg_stat_activity
    WHERE datname = current_database() AND backend_type = 'client backend' AND state = 'active' AND query LIKE 'COPY (SELECT%'`
    .execute(env.ctx.db)).rows[0]!.n);

  it('stops the COPY on the server and leaves the pool healthy', async () => {
    await env.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = env.app.server.address() as AddressInfo;
    const metric = async (outcome: string) => (await env.ctx.metrics.registry.getSingleMetric('lethe_exports_total')!.get())
      .values.find((v) => v.labels.outcome === outcome && v.labels.dataset === 'customers')?.value ?? 0;
    // Leave once the COPY is running (and seen running on the server).
    const runningBefore = await new Promise<number>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/v1/exports/customers', headers: { authorization: `Bearer ${env.operatorKey}` } }, (res) => {
        res.once('data', () => {
          res.pause();
          copies().then((n) => { req.destroy(); resolve(n); }, (e: unknown) => { req.destroy(); reject(e as Error); });
        });
      });
      req.on('error', (e) => { if (!req.destroyed) reject(e); });
    });
    expect(runningBefore).toBe(1);
    let aborted = 0;
    for (let i = 0; i < 400 && aborted === 0; i++) {
      aborted = await metric('aborted');
      if (aborted === 0) await new Promise((r) => setTimeout(r, 25));
    }
    expect(aborted).toBe(1);
    // The server ends the COPY once its connection is closed: none left running.
    let running = await copies();
    for (let i = 0; i < 200 && running > 0; i++) {
      await new Promise((r) => setTimeout(r, 25));
      running = await copies();
    }
    expect(running).toBe(0);
    // Every connection of the pool answers (the broken one was discarded, not handed out again)…
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => sql<{ n: number }>`SELECT ${i}::int AS n`.execute(env.ctx.db)));
    expect(answers.map((r) => r.rows[0]!.n)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    // …and a whole export runs after it.
    const lines = (await exportOf(env, 'customers')).split('\n').filter((l) => l.length > 0);
    expect(lines).toHaveLength(ROWS);
    expect(await metric('completed')).toBe(1);
  }, 120_000);

  it('runs at most a quarter of the pool as COPY exports at once; the next ones read in batches, the same bytes', async () => {
    if (!env.app.server.listening) await env.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = env.app.server.address() as AddressInfo;
    const limit = copyLimit(pgPoolOf(env.ctx.db)!);
    expect(limit).toBe(5); // the default pool of 20
    // limit + 2 exports, each paused after its first bytes: all started, none finished.
    const started: Array<{ res: http.IncomingMessage; done: Promise<{ sha: string; bytes: number }> }> = [];
    for (let i = 0; i < limit + 2; i++) {
      started.push(await new Promise((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/v1/exports/customers', headers: { authorization: `Bearer ${env.operatorKey}` } }, (res) => {
          const hash = crypto.createHash('sha256');
          let bytes = 0;
          const done = new Promise<{ sha: string; bytes: number }>((ok, fail) => {
            res.on('data', (d: Buffer) => { hash.update(d); bytes += d.length; });
            res.on('end', () => ok({ sha: hash.digest('hex'), bytes }));
            res.on('error', fail);
          });
          res.once('data', () => { res.pause(); resolve({ res, done }); });
        }).on('error', reject);
      }));
    }
    expect(await activeCopies()).toBe(limit);
    for (const s of started) s.res.resume();
    const results = await Promise.all(started.map((s) => s.done));
    expect(new Set(results.map((r) => r.sha)).size).toBe(1);
    expect(results[0]!.bytes).toBeGreaterThan(ROWS * 900);
    // The count went back down: the next export is a COPY again.
    const again = await new Promise<number>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/v1/exports/customers', headers: { authorization: `Bearer ${env.operatorKey}` } }, (res) => {
        res.once('data', () => { res.pause(); activeCopies().then((n) => { req.destroy(); resolve(n); }, reject); });
      });
      req.on('error', (e) => { if (!req.destroyed) reject(e); });
    });
    expect(again).toBe(1);
  }, 180_000);
});
