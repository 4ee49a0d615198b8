import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createApplication, createCustomer, customerBody, populate } from './helpers/fixtures.ts';
import { COLLECTIONS } from '../src/customers/collections.ts';
import type { SubjectExport } from '../src/customers/subject-export.ts';

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
});
afterAll(async () => env?.close());

const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');

describe('GET /v1/customers/{id}/export', () => {
  it('holds the profile, every collection, the activity log and the photo metadata', async () => {
    const app = await createApplication(api);
    const body = customerBody();
    const c = await createCustomer(api, body);
    const ids = await populate(api, c.id, [app.id]);
    await add(api, c.id, 'addresses', { city: 'Oslo' });
    expect((await api.put(`/v1/customers/${c.id}/profile-photo`, PNG, { 'content-type': 'image/png' })).status).toBe(204);
    // Another customer's data never leaks into this export.
    const other = await createCustomer(api);
    await add(api, other.id, 'addresses', { city: 'ElsewhereCity' });

    const r = await api.get(`/v1/customers/${c.id}/export`);
    expect(r.status).toBe(200);
    const doc = r.body;
    expect(doc.format).toBe('lethe.subject-export/v1');
    expect(doc.customerId).toBe(c.id);
    expect(doc.exportedAt).toBe('2026-03-02T10:00:00.000Z');
    expect(doc.profile).toMatchObject({ ...body, id: c.id, profilePhotoUrl: `/v1/customers/${c.id}/profile-photo` });
    expect(doc.profilePhoto).toEqual({ contentType: 'image/png', sizeBytes: PNG.length });
    expect(Object.keys(doc.collections).sort()).toEqual(COLLECTIONS.map((d) => d.path).sort());
    expect(Object.keys(doc.collections)).toHaveLength(9);
    expect(doc.collections.addresses).toHaveLength(2);
    for (const path of ['payment-methods', 'subscriptions', 'memberships', 'social-identities', 'invoices', 'orders', 'transactions', 'licenses']) {
      expect(doc.collections[path], path).toHaveLength(1);
    }
    expect(doc.collections.transactions[0]).toMatchObject({ id: ids.transactionId, amountMinor: 1999, currency: 'EUR', invoiceId: ids.invoiceId });
    expect(doc.collections.licenses[0]).toMatchObject({ applicationId: app.id, status: 'active' });
    expect(doc.collections['payment-methods'][0]).toMatchObject({ last4: '4242', expMonth: 12 });
    // Each record equals what the collection's own endpoint returns.
    const subs = await api.get(`/v1/customers/${c.id}/subscriptions`);
    expect(doc.collections.subscriptions).toEqual(subs.body.data);
    const types = doc.activity.map((a: { type: string }) => a.type);
    expect(types).toContain('customer.created');
    expect(types).toContain('customer.profile_photo_updated');
    expect(types).toContain('license.created');
    expect(r.raw).not.toContain('ElsewhereCity');
    expect(r.raw).not.toContain(other.id);
    expect(r.headers['cache-control']).toBe('no-store');

    const withPhoto = await api.get(`/v1/customers/${c.id}/export?includePhoto=true`);
    expect(Buffer.from(withPhoto.body.profilePhoto.dataBase64, 'base64')).toEqual(PNG);

    // The shared function returns the same document.
    const shared: SubjectExport = env.services.port('subjectExport');
    expect(await shared(env.ctx.db, c.id)).toEqual(doc);

    // Further customer-linked tables (deletion cases) are walked from the data map.
    const lic = doc.collections.licenses[0];
    expect((await api.post(`/v1/licenses/${lic.id}/cancel`)).status).toBe(200);
    const again = await api.get(`/v1/customers/${c.id}/export`);
    expect(again.body.deletionCases).toEqual([expect.objectContaining({ customerId: c.id, applicationId: app.id, status: 'grace' })]);
  });

  it('404 for an unknown customer and once deleted; 400 for a malformed id; operator only', async () => {
    const c = await createCustomer(api);
    expect((await api.get(`/v1/customers/${c.id}/export`)).status).toBe(200);
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
    const gone = await api.get(`/v1/customers/${c.id}/export`);
    expect(gone.status).toBe(404);
    expect(gone.body.code).toBe('not_found');
    expect((await api.get('/v1/customers/00000000-0000-4000-8000-000000000000/export')).status).toBe(404);
    expect((await api.get('/v1/customers/nope/export')).status).toBe(400);
    expect((await client(env.app, null).get(`/v1/customers/${c.id}/export`)).status).toBe(401);
    const app = await createApplication(api);
    const key = (await api.post('/v1/api-keys', { kind: 'application', applicationIds: [app.id] })).body.key as string;
    const live = await createCustomer(api);
    expect((await client(env.app, key).get(`/v1/customers/${live.id}/export`)).status).toBe(403);
  });
});
