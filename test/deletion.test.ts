import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { createApplication, createCustomer, populate, add } from './helpers/fixtures.ts';
import { CASCADE } from '../src/erasure/cascade.ts';

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
});
afterAll(async () => env?.close());

describe('DELETE /v1/customers/{id}', () => {
  it('cascades to every collection, cancels, unlinks transactions, and then answers 404 everywhere', async () => {
    const appA = await createApplication(api);
    const appB = await createApplication(api);
    const c = await createCustomer(api);
    const ids = await populate(api, c.id, [appA.id, appB.id]);

    const preview = await api.get(`/v1/customers/${c.id}/deletion-preview`);
    expect(preview.status).toBe(200);
    expect(preview.body).toMatchObject({
      customerId: c.id, deletable: true, blockers: [],
      softDeleted: { customer: 1, addresses: 1, 'payment-methods': 1, subscriptions: 1, memberships: 1,
        'social-identities': 1, invoices: 1, orders: 1, licenses: 2 },
      cancelled: { subscriptions: 1, licenses: 2 },
      preservedTransactions: 1,
      applicationsToNotify: [appA.id, appB.id].sort(),
    });

    const del = await api.del(`/v1/customers/${c.id}`);
    expect(del.status).toBe(204);
    expect(del.raw).toBe('');

    for (const path of ['', '/addresses', '/payment-methods', '/subscriptions', '/memberships', '/social-identities',
      '/invoices', '/orders', '/transactions', '/licenses', '/activity', '/deletion-preview', '/profile-photo']) {
      const r = await api.get(`/v1/customers/${c.id}${path}`);
      expect(r.status, path).toBe(404);
      expect(r.body.code).toBe('not_found');
    }
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(404);
    expect((await api.patch(`/v1/customers/${c.id}`, { firstName: 'x' })).status).toBe(404);
    expect((await api.post(`/v1/customers/${c.id}/addresses`, { city: 'x' })).status).toBe(404);
    expect((await api.post(`/v1/subscriptions/${ids.subscriptionId}/cancel`)).status).toBe(404);
    expect((await api.post(`/v1/licenses/${ids.licenseIds[0]}/cancel`)).status).toBe(404);
    const list = await api.get(`/v1/customers?email=${encodeURIComponent(c.email)}`);
    expect(list.body.data).toEqual([]);

    // Transactions stay, with a pseudonymous reference instead of the customer id.
    const tx = await env.ctx.db.selectFrom('transactions').selectAll().where('id', '=', ids.transactionId).executeTakeFirstOrThrow();
    expect(tx.customerId).toBeNull();
    expect(tx.customerRef).toMatch(/^psn_[0-9a-f]{40}$/);
    expect(tx.customerRef).not.toContain(c.id);
    expect(tx.amountMinor).toBe(1999);

    const subs = await env.ctx.db.selectFrom('subscriptions').selectAll().where('customerId', '=', c.id).execute();
    expect(subs.every((s) => s.status === 'cancelled' && s.deletedAt !== null && s.cancelledAt !== null)).toBe(true);
    const lic = await env.ctx.db.selectFrom('licenses').selectAll().where('customerId', '=', c.id).execute();
    expect(lic.every((l) => l.status === 'cancelled' && l.deletedAt !== null)).toBe(true);

    const receipt = await api.get(`/v1/deletions/${c.id}`);
    expect(receipt.status).toBe(200);
    expect(receipt.body).toMatchObject({
      customerId: c.id, deletedAt: '2026-03-02T10:00:00.000Z', preservedTransactions: 1,
      cancelled: { subscriptions: 1, licenses: 2 },
      softDeleted: { customer: 1, addresses: 1, licenses: 2 },
      applicationsNotified: [appA.id, appB.id].sort(),
    });
    expect(receipt.body.auditHash).toMatch(/^[0-9a-f]{64}$/);
    // No personal value on the receipt.
    expect(receipt.raw).not.toContain(c.email);
    expect(receipt.raw).not.toContain('Ada');

    const audit = await api.get(`/v1/audit-events?subjectId=${c.id}`);
    expect(audit.body.data).toHaveLength(1);
    expect(audit.body.data[0]).toMatchObject({ type: 'customer.deleted', hash: receipt.body.auditHash });
    expect(JSON.stringify(audit.body)).not.toContain(c.email);
  });

  it('the pseudonymous reference is stable per customer and differs between customers', async () => {
    const refs: string[] = [];
    for (let i = 0; i < 2; i++) {
      const c = await createCustomer(api);
      await add(api, c.id, 'transactions', { amountMinor: 1, currency: 'EUR' });
      await add(api, c.id, 'transactions', { amountMinor: 2, currency: 'EUR' });
      expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
      const rows = await env.ctx.db.selectFrom('transactions').select('customerRef').where('customerRef', 'is not', null)
        .where('amountMinor', 'in', [1, 2]).where('customerId', 'is', null).orderBy('createdAt').execute();
      refs.push(...rows.slice(-2).map((r) => r.customerRef!));
    }
    expect(refs[0]).toBe(refs[1]);
    expect(refs[2]).toBe(refs[3]);
    expect(refs[0]).not.toBe(refs[2]);
  });

  it('404 for an unknown customer, 400 for a malformed id', async () => {
    expect((await api.del('/v1/customers/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    const bad = await api.del('/v1/customers/not-a-uuid');
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('validation_failed');
  });

  it('409 legal_hold, and nothing changes', async () => {
    const c = await createCustomer(api, { email: 'hold@example.com', legalHold: true });
    await add(api, c.id, 'addresses', { city: 'Paris' });
    const preview = await api.get(`/v1/customers/${c.id}/deletion-preview`);
    expect(preview.body.deletable).toBe(false);
    expect(preview.body.blockers.map((b: { code: string }) => b.code)).toEqual(['legal_hold']);
    const r = await api.del(`/v1/customers/${c.id}`);
    expect(r.status).toBe(409);
    expect(r.headers['content-type']).toContain('application/problem+json');
    expect(r.body).toMatchObject({ code: 'legal_hold', status: 409 });
    expect((await api.get(`/v1/customers/${c.id}`)).status).toBe(200);
    expect((await api.get(`/v1/customers/${c.id}/addresses`)).body.data).toHaveLength(1);
    expect((await api.patch(`/v1/customers/${c.id}`, { legalHold: false })).status).toBe(200);
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
  });

  it('409 pending_transactions until the transaction settles', async () => {
    const c = await createCustomer(api);
    const tx = await add(api, c.id, 'transactions', { amountMinor: 500, currency: 'USD', status: 'pending' });
    const preview = await api.get(`/v1/customers/${c.id}/deletion-preview`);
    expect(preview.body.blockers).toEqual([expect.objectContaining({ code: 'pending_transactions', count: 1 })]);
    const r = await api.del(`/v1/customers/${c.id}`);
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('pending_transactions');
    const settle = await api.patch(`/v1/transactions/${tx.id}`, { status: 'succeeded' });
    expect(settle.status).toBe(200);
    expect(settle.body.status).toBe('succeeded');
    expect((await api.patch(`/v1/transactions/${tx.id}`, { status: 'pending' })).status).toBe(409);
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
  });

  it('two racing DELETEs: exactly one 204 and one 404, one receipt, one audit event', async () => {
    const c = await createCustomer(api);
    await populate(api, c.id);
    const [a, b] = await Promise.all([api.del(`/v1/customers/${c.id}`), api.del(`/v1/customers/${c.id}`)]);
    expect([a.status, b.status].sort()).toEqual([204, 404]);
    const events = await env.ctx.db.selectFrom('auditEvents').select('id').where('subjectId', '=', c.id).execute();
    expect(events).toHaveLength(1);
  });

  it('a record added while a DELETE runs is either rejected or deleted with the customer', async () => {
    const c = await createCustomer(api);
    const [del, addr] = await Promise.all([
      api.del(`/v1/customers/${c.id}`),
      api.post(`/v1/customers/${c.id}/addresses`, { city: 'Rome' }),
    ]);
    expect(del.status).toBe(204);
    expect([201, 404]).toContain(addr.status);
    const live = await env.ctx.db.selectFrom('addresses').select('id').where('customerId', '=', c.id).where('deletedAt', 'is', null).execute();
    expect(live).toEqual([]);
  });

  it('every table that references customers is covered by the cascade (information_schema)', async () => {
    const r = await sql<{ table_name: string }>`
      SELECT DISTINCT c.table_name FROM information_schema.columns c
      WHERE c.table_schema = current_schema() AND c.column_name = 'customer_id'
      UNION
      SELECT DISTINCT tc.table_name FROM information_schema.table_constraints tc
      JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = tc.constraint_name
      WHERE tc.constraint_type = 'FOREIGN KEY' AND ccu.table_name = 'customers'
    `.execute(env.ctx.db);
    const tables = r.rows.map((x) => (x as unknown as { tableName: string }).tableName ?? x.table_name);
    expect(tables.length).toBeGreaterThan(5);
    const missing = tables.filter((t) => !(t in CASCADE));
    expect(missing, `tables referencing customers without a cascade action: ${missing.join(', ')}`).toEqual([]);
  });
});
