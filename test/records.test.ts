import crypto from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createApplication, createCustomer, customerBody } from './helpers/fixtures.ts';
import { scanColumns } from './helpers/canary-scan.ts';
import { createDatabaseBackup } from '../src/backups/database-backup.ts';
import { restoreDatabaseBackup } from '../src/backups/restore.ts';
import { readFile as readJournalFile } from '../src/backups/erasure-journal.ts';

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv({ clockStart: '2026-06-01T08:00:00Z' });
  api = client(env.app, env.operatorKey);
});
afterAll(async () => env?.close());

const PREFIX = `cnry${crypto.randomBytes(5).toString('hex')}`;
let n = 0;
const canary = () => `${PREFIX}r${(n++).toString(36)}`;

describe('one record: GET, PATCH, DELETE', () => {
  it('GET and PATCH work for every collection; PATCH changes descriptive fields only; licenses answer 405', async () => {
    const c = await createCustomer(api);
    const app = await createApplication(api);
    const bodies: Record<string, Record<string, unknown>> = {
      addresses: { line1: '1 Main St', city: 'Berlin' },
      'payment-methods': { brand: 'visa', last4: '4242' },
      subscriptions: { plan: 'pro' },
      memberships: { name: 'team', role: 'member', status: 'active' },
      'social-identities': { provider: 'github', externalId: 'gh-1' },
      invoices: { number: 'INV-1', amountMinor: 100, currency: 'EUR' },
      orders: { number: 'ORD-1', amountMinor: 100, currency: 'EUR' },
      transactions: { amountMinor: 100, currency: 'EUR' },
      licenses: { applicationId: app.id },
    };
    const patches: Record<string, Record<string, unknown>> = {
      addresses: { line1: '2 Side St' }, 'payment-methods': { brand: 'mastercard' }, subscriptions: { plan: 'team' },
      memberships: { role: 'owner' }, 'social-identities': { provider: 'gitlab' }, invoices: { number: 'INV-1b' },
      orders: { number: 'ORD-1b' }, transactions: {},
    };
    for (const [path, body] of Object.entries(bodies)) {
      const rec = await add(api, c.id, path, body);
      const got = await api.get(`/v1/customers/${c.id}/${path}/${rec.id}`);
      expect(got.status, path).toBe(200);
      expect(got.body).toEqual(rec);
      const patch = patches[path];
      if (!patch) {
        const r = await api.patch(`/v1/customers/${c.id}/${path}/${rec.id}`, { status: 'cancelled' });
        expect(r.status, path).toBe(405);
        continue;
      }
      const p = await api.patch(`/v1/customers/${c.id}/${path}/${rec.id}`, patch);
      expect(p.status, `${path} ${JSON.stringify(p.body)}`).toBe(200);
      expect(p.body).toMatchObject(patch);
      expect((await api.get(`/v1/customers/${c.id}/${path}/${rec.id}`)).body).toMatchObject(patch);
      // Another customer's id in the path: 404.
      const other = await createCustomer(api);
      expect((await api.get(`/v1/customers/${other.id}/${path}/${rec.id}`)).status).toBe(404);
    }
    // Never ids, amounts, currency or status.
    const inv = await add(api, c.id, 'invoices', { number: 'INV-2', amountMinor: 500, currency: 'EUR' });
    for (const bad of [{ amountMinor: 1 }, { currency: 'USD' }, { status: 'paid' }, { id: crypto.randomUUID() }, { customerId: crypto.randomUUID() }]) {
      const r = await api.patch(`/v1/customers/${c.id}/invoices/${inv.id}`, bad);
      expect(r.status, JSON.stringify(bad)).toBe(400);
    }
    expect((await api.get(`/v1/customers/${c.id}/invoices/${inv.id}`)).body).toMatchObject({ amountMinor: 500, currency: 'EUR', status: 'open' });
    const sub = await add(api, c.id, 'subscriptions', { plan: 'x' });
    expect((await api.patch(`/v1/customers/${c.id}/subscriptions/${sub.id}`, { status: 'cancelled' })).status).toBe(400);
  });

  it('DELETE answers 405 for invoices, orders, transactions, subscriptions and licenses, and leaves the record', async () => {
    const c = await createCustomer(api);
    const app = await createApplication(api);
    const recs = {
      invoices: await add(api, c.id, 'invoices', { number: 'I', amountMinor: 1, currency: 'EUR' }),
      orders: await add(api, c.id, 'orders', { number: 'O', amountMinor: 1, currency: 'EUR' }),
      transactions: await add(api, c.id, 'transactions', { amountMinor: 1, currency: 'EUR' }),
      subscriptions: await add(api, c.id, 'subscriptions', { plan: 'p' }),
      licenses: await add(api, c.id, 'licenses', { applicationId: app.id }),
    };
    for (const [path, rec] of Object.entries(recs)) {
      const r = await api.del(`/v1/customers/${c.id}/${path}/${rec.id}`);
      expect(r.status, path).toBe(405);
      expect(r.body.code).toBe('method_not_allowed');
      expect((await api.get(`/v1/customers/${c.id}/${path}/${rec.id}`)).status).toBe(200);
    }
  });

  for (const automatic of [true, false]) {
    it(`DELETE of an address, card, membership, social identity: soft deleted and redacted (automatic deletion ${automatic ? 'on' : 'off'}); no column keeps its values`, async () => {
      expect((await api.patch('/v1/settings', { automaticPersonalDataDeletion: automatic })).status).toBe(200);
      const c = await createCustomer(api);
      const keepAddress = await add(api, c.id, 'addresses', { line1: 'kept street', city: 'Paris' });
      const idem = { 'idempotency-key': `addr-${crypto.randomUUID()}` };
      const address = {
        salutation: canary(), firstName: canary(), lastName: canary(), title: canary(), company: canary(), department: canary(),
        line1: canary(), line2: canary(), city: 'Berlin', postalCode: canary(), country: 'DE', phone: canary(),
      };
      const addr = await api.post(`/v1/customers/${c.id}/addresses`, address, idem);
      expect(addr.status).toBe(201);
      const card = await add(api, c.id, 'payment-methods', { brand: 'visa', cardId: canary(), last4: '4242', expMonth: 3, expYear: 2031, token: canary() });
      const social = await add(api, c.id, 'social-identities', { provider: 'github', externalId: canary() });
      const member = await add(api, c.id, 'memberships', { name: 'team', role: 'admin' });
      const removed: Array<[string, string]> = [['addresses', addr.body.id], ['payment-methods', card.id], ['social-identities', social.id], ['memberships', member.id]];

      // Personal values are sealed under the customer's key (crypto-shredding): none is in clear, and
      // the records' values are found by decrypting them with the key, which record erasure keeps.
      const needles = [PREFIX];
      expect((await scanColumns(env.ctx.db, needles)).hits).toEqual([]);
      const dek = (await env.ctx.crypto.keysOf(env.ctx.db, [c.id])).get(c.id);
      expect(dek).toBeDefined();
      const opened = async (table: string, id: string) => {
        const raw = await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(table)} WHERE id = ${id}`.execute(env.ctx.db);
        const row = Object.fromEntries(Object.entries(raw.rows[0]!).map(([k, v]) => [k.replace(/_([a-z])/g, (_m, x: string) => x.toUpperCase()), v]));
        return env.ctx.crypto.decryptRow(table, row, id, dek);
      };
      const tables: Record<string, string> = { addresses: 'addresses', 'payment-methods': 'payment_methods', 'social-identities': 'social_identities', memberships: 'memberships' };
      const withCanary: string[] = [];
      for (const [path, id] of removed) if (JSON.stringify(await opened(tables[path]!, id)).includes(PREFIX)) withCanary.push(path);
      expect(withCanary.sort()).toEqual(['addresses', 'payment-methods', 'social-identities']);

      for (const [path, id] of removed) {
        expect((await api.del(`/v1/customers/${c.id}/${path}/${id}`)).status, path).toBe(204);
        expect((await api.get(`/v1/customers/${c.id}/${path}/${id}`)).status).toBe(404);
        expect((await api.del(`/v1/customers/${c.id}/${path}/${id}`)).status).toBe(404);
        expect((await api.patch(`/v1/customers/${c.id}/${path}/${id}`, {})).status).toBe(404);
      }
      const after = await scanColumns(env.ctx.db, needles);
      expect(after.hits, JSON.stringify(after.hits)).toEqual([]);
      expect(after.columnsScanned).toBeGreaterThan(40);
      // Decrypted with the customer's key (which stays: the customer lives), no removed record holds a value any more.
      for (const [path, id] of removed) expect(JSON.stringify(await opened(tables[path]!, id)), path).not.toContain(PREFIX);
      expect(await env.ctx.crypto.keysOf(env.ctx.db, [c.id])).toHaveProperty('size', 1);

      // Soft deleted and redacted per policy (mask keeps shape, kept fields stay), the rest of the customer untouched.
      const rawAddress = await env.ctx.db.selectFrom('addresses').selectAll().where('id', '=', addr.body.id).executeTakeFirstOrThrow();
      // The new values are sealed again under the living customer's key, like every other value of it.
      expect(env.ctx.crypto.isSealed(rawAddress.line1)).toBe(true);
      const row = await opened('addresses', addr.body.id);
      expect(row.deletedAt).not.toBeNull();
      expect(row).toMatchObject({ salutation: null, title: null, postalCode: null, city: 'Berlin', country: 'DE' });
      expect(row.line1).not.toBeNull();
      const cardRow = await opened('payment_methods', card.id);
      expect(cardRow.brand).toBe('visa');
      expect(cardRow.last4).toMatch(/^[0-9]{4}$/);
      const list = await api.get(`/v1/customers/${c.id}/addresses`);
      expect(list.body.data.map((a: { id: string }) => a.id)).toEqual([keepAddress.id]);
      expect((await api.get(`/v1/customers/${c.id}`)).body.email).toBe(c.email);
      // The replay of the creation returns no stored body any more (the record's data is gone from it).
      const replay = await api.post(`/v1/customers/${c.id}/addresses`, address, idem);
      expect(JSON.stringify(replay.body)).not.toContain(PREFIX);

      // Audited with ids only; journaled in the table and in the file.
      const audit = await env.ctx.db.selectFrom('auditEvents').selectAll().where('type', '=', 'record.deleted')
        .where('subjectId', '=', addr.body.id).execute();
      expect(audit).toHaveLength(1);
      expect(audit[0]!.data).toMatchObject({ customerId: c.id, collection: 'addresses', recordId: addr.body.id });
      const journal = await env.ctx.db.selectFrom('erasureJournal').selectAll().where('recordId', 'in', removed.map(([, id]) => id)).execute();
      expect(journal.map((j) => j.kind)).toEqual(['record', 'record', 'record', 'record']);
      expect(journal.find((j) => j.recordId === card.id)!.recordTable).toBe('payment_methods');
      const inFile = readJournalFile(env.config).filter((e) => e.kind === 'record').map((e) => e.recordId);
      for (const [, id] of removed) expect(inFile).toContain(id);
    });
  }

  it('a restore of a backup taken before a record was removed removes it again', async () => {
    const c = await createCustomer(api);
    const card = await add(api, c.id, 'payment-methods', { brand: 'visa', token: canary(), cardId: canary() });
    const backup = await createDatabaseBackup(env.ctx);
    env.clock.advance(60_000);
    expect((await api.del(`/v1/customers/${c.id}/payment-methods/${card.id}`)).status).toBe(204);
    const r = await restoreDatabaseBackup(env.ctx, env.services.registry, backup.path);
    expect(r.replay.recordsReplayed).toBe(1);
    expect((await api.get(`/v1/customers/${c.id}/payment-methods/${card.id}`)).status).toBe(404);
    const row = await env.ctx.db.selectFrom('paymentMethods').selectAll().where('id', '=', card.id).executeTakeFirstOrThrow();
    expect(row.deletedAt).not.toBeNull();
    expect(row.token).not.toBe(card.token);
    expect(JSON.stringify(row)).not.toContain(PREFIX);
    expect((await api.get(`/v1/customers/${c.id}`)).status).toBe(200);
  });
});

describe('externalId', () => {
  it('unique among living customers, searchable, freed and nullified when the customer is deleted', async () => {
    expect((await api.patch('/v1/settings', { automaticPersonalDataDeletion: true })).status).toBe(200);
    const ext = `ext-${crypto.randomUUID()}`;
    const a = await createCustomer(api, { ...customerBody(), externalId: ext });
    expect(a.externalId).toBe(ext);
    const clash = await api.post('/v1/customers', { ...customerBody(), externalId: ext });
    expect(clash.status).toBe(409);
    const b = await createCustomer(api);
    expect((await api.patch(`/v1/customers/${b.id}`, { externalId: ext })).status).toBe(409);
    const found = await api.get(`/v1/customers?externalId=${encodeURIComponent(ext)}`);
    expect(found.body.data.map((x: { id: string }) => x.id)).toEqual([a.id]);
    // Stored sealed (randomized): uniqueness and the filter go through the blind index, exact match only.
    const stored = await env.ctx.db.selectFrom('customers').select(['externalId', 'externalIdBidx']).where('id', '=', a.id).executeTakeFirstOrThrow();
    expect(env.ctx.crypto.isSealed(stored.externalId)).toBe(true);
    expect(stored.externalIdBidx).toMatch(/^[0-9a-f]{64}$/);
    expect(stored.externalIdBidx).not.toBe(env.ctx.crypto.blindIndex(ext));
    expect((await api.get(`/v1/customers?externalId=${encodeURIComponent(ext.toUpperCase())}`)).body.data).toEqual([]);
    expect((await api.del(`/v1/customers/${a.id}`)).status).toBe(204);
    expect((await api.get(`/v1/customers?externalId=${encodeURIComponent(ext)}`)).body.data).toEqual([]);
    const row = await env.ctx.db.selectFrom('customers').select(['externalId', 'externalIdBidx']).where('id', '=', a.id).executeTakeFirstOrThrow();
    expect(row).toEqual({ externalId: null, externalIdBidx: null });
    // Freed for a new living customer.
    expect((await api.patch(`/v1/customers/${b.id}`, { externalId: ext })).status).toBe(200);
  });
});
