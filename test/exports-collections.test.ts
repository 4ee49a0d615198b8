import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseCsv } from 'csv-parse/sync';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createApplication, createCustomer, customerBody, populate } from './helpers/fixtures.ts';
import { DATASETS, exportColumns } from '../src/exports/exports.service.ts';
import { COLLECTIONS } from '../src/customers/collections.ts';
import { DATA_MAP, toCamel } from '../src/erasure/data-map.ts';

type Rec = Record<string, any>;
const jsonl = (raw: string): Rec[] => raw.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Rec);
const PSN = /^psn_[0-9a-f]{32}$/;
const NEW = ['addresses', 'payment-methods', 'subscriptions', 'memberships', 'social-identities', 'invoices', 'orders', 'licenses'];

/** Exports are streamed text (x-ndjson or csv): read raw, not parsed as one JSON document. */
const exportOf = async (env: TestEnv, url: string) => {
  const r = await env.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${env.operatorKey}` } });
  return { status: r.statusCode, raw: r.body };
};

describe('every collection is an exportable dataset', () => {
  let env: TestEnv;
  let api: Client;
  let living: Rec;
  let deleted: Rec;
  let removedAddress: Rec;
  let deletedPsn: string;

  beforeAll(async () => {
    env = await createTestEnv();
    api = client(env.app, env.operatorKey);
    const app = await createApplication(api);
    living = await createCustomer(api);
    await populate(api, living.id, [app.id]);
    removedAddress = await add(api, living.id, 'addresses', { firstName: 'Gone', lastName: 'Address', line1: '9 Removed Rd', city: 'Oslo', phone: '+47 1234' });
    expect((await api.del(`/v1/customers/${living.id}/addresses/${removedAddress.id}`)).status).toBe(204);
    // Deleted with automatic personal data deletion off: the stored values stay, so only the export hides them.
    expect((await api.patch('/v1/settings', { automaticPersonalDataDeletion: false })).status).toBe(200);
    deleted = await createCustomer(api, customerBody('expdel'));
    await populate(api, deleted.id, [app.id]);
    expect((await api.del(`/v1/customers/${deleted.id}`)).status).toBe(204);
    const customers = jsonl((await exportOf(env, '/v1/exports/customers')).raw);
    deletedPsn = customers.find((c) => c.deleted && c.id !== living.id && PSN.test(c.id) && c.createdAt === deleted.createdAt)!.id;
    expect(deletedPsn).toMatch(PSN);
  });
  afterAll(async () => env?.close());

  it('lists every collection as a dataset; unknown datasets are 404', async () => {
    for (const d of NEW) expect(DATASETS).toContain(d);
    expect((await exportOf(env, '/v1/exports/nope')).status).toBe(404);
  });

  for (const dataset of NEW) {
    it(`${dataset}: a deleted customer's row, field by field against the data map; living rows as stored`, async () => {
      const def = COLLECTIONS.find((c) => c.path === dataset)!;
      const r = await exportOf(env, `/v1/exports/${dataset}`);
      expect(r.status).toBe(200);
      const rows = jsonl(r.raw);
      // Personal values are stored sealed under their customer's key: compare with the opened rows
      // (a deleted customer's are redacted clear values, left as they are).
      const sealed = await env.ctx.db.selectFrom(def.table as 'addresses').selectAll().execute() as Rec[];
      const stored = await env.ctx.crypto.decryptRows(env.ctx.db, def.sqlTable, sealed, (s) => s.customerId as string, (s) => s.id as string);
      const byId = new Map(stored.map((s) => [s.id as string, s]));
      const columns = exportColumns(dataset);
      // Columns come from the data map: every non-secret column of the table, plus `deleted`.
      const mapped = Object.keys(DATA_MAP[def.sqlTable]!.columns).map(toCamel);
      expect(columns.map((c) => c.name).filter((n) => n !== 'deleted').sort()).toEqual(mapped.sort());

      const deletedRows = rows.filter((x) => x.customerId === deletedPsn);
      expect(deletedRows.length, `${dataset} rows of the deleted customer`).toBeGreaterThan(0);
      // No row shows the deleted customer's real id.
      expect(r.raw).not.toContain(deleted.id);
      for (const row of deletedRows) {
        expect(row.deleted).toBe(true);
        const original = byId.get(row.id)!;
        expect(original, 'the row id stays (not personal)').toBeDefined();
        for (const c of columns) {
          const value = row[c.name];
          const was = original[c.name];
          if (c.name === 'deleted') continue;
          if (c.treatment === 'customer') expect(value).toBe(deletedPsn);
          else if (c.treatment === 'pseudonym') {
            if (was === null) expect(value).toBeNull(); else { expect(value, c.name).toMatch(PSN); expect(value).not.toBe(was); }
          } else if (c.treatment === 'null') expect(value, c.name).toBeNull();
          else expect(value, c.name).toEqual(was instanceof Date ? was.toISOString() : was);
        }
      }
      const livingRows = rows.filter((x) => x.customerId === living.id && !x.deleted);
      expect(livingRows.length).toBeGreaterThan(0);
      for (const row of livingRows) {
        const original = byId.get(row.id)!;
        for (const c of columns) if (c.name !== 'deleted') expect(row[c.name], c.name).toEqual(original[c.name] instanceof Date ? original[c.name].toISOString() : original[c.name]);
      }
    });
  }

  it('a record removed one by one appears with deleted: true and its personal fields treated as a deleted customer\'s', async () => {
    const rows = jsonl((await exportOf(env, '/v1/exports/addresses')).raw);
    const row = rows.find((x) => x.id === removedAddress.id)!;
    expect(row).toMatchObject({ deleted: true, customerId: living.id, city: null, country: null, postalCode: null });
    for (const f of ['firstName', 'lastName', 'line1', 'phone']) expect(row[f], f).toMatch(PSN);
    expect(JSON.stringify(row)).not.toContain('Oslo');
  });

  it('CSV has the same columns and pseudonyms', async () => {
    const r = await exportOf(env, '/v1/exports/payment-methods?format=csv');
    expect(r.status).toBe(200);
    const table = parseCsv(r.raw, { columns: true }) as Rec[];
    const jl = jsonl((await exportOf(env, '/v1/exports/payment-methods')).raw);
    expect(table.length).toBe(jl.length);
    const row = table.find((x) => x.customerId === deletedPsn)!;
    expect(row.token).toMatch(PSN);
    expect(row.deleted).toBe('true');
  });
});
