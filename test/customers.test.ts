import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createApplication, createAppKey, createCustomer, customerBody } from './helpers/fixtures.ts';

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
});
afterAll(async () => env?.close());

const MISSING = '00000000-0000-4000-8000-000000000000';

// SPEC "Customer fields" and the collections' fields, verbatim.
const CUSTOMER_FIELDS = ['id', 'externalId', 'salutation', 'firstName', 'lastName', 'displayName', 'email', 'organization', 'tin',
  'lastLoginSuccessIp', 'lastLoginFailureIp', 'sdkRegisterIp', 'metadata', 'legalHold', 'profilePhotoUrl', 'createdAt', 'updatedAt'];
const RECORD = ['id', 'customerId', 'createdAt', 'updatedAt'];
const SPEC_COLLECTIONS: Record<string, { fields: string[]; body: (ctx: { applicationId: string }) => Record<string, unknown>; entity: string }> = {
  addresses: {
    entity: 'address',
    fields: ['salutation', 'firstName', 'lastName', 'title', 'company', 'department', 'line1', 'line2', 'city', 'postalCode', 'country', 'phone'],
    body: () => ({ salutation: 'Ms', firstName: 'Grace', lastName: 'Hopper', title: 'RAdm', company: 'Navy', department: 'Computing',
      line1: '1 Main St', line2: 'Apt 2', city: 'Arlington', postalCode: '22201', country: 'US', phone: '+1 555 0100' }),
  },
  'payment-methods': {
    entity: 'payment_method',
    fields: ['brand', 'cardId', 'last4', 'expMonth', 'expYear', 'token'],
    body: () => ({ brand: 'mastercard', cardId: 'card_1', last4: '4444', expMonth: 1, expYear: 2031, token: 'tok_1' }),
  },
  subscriptions: {
    entity: 'subscription',
    fields: ['plan', 'status', 'giftRecipientEmail', 'giftRecipientFirstName', 'giftRecipientLastName', 'cancelledAt'],
    body: () => ({ plan: 'team', status: 'active', giftRecipientEmail: 'friend@example.org', giftRecipientFirstName: 'Fr', giftRecipientLastName: 'End' }),
  },
  memberships: { entity: 'membership', fields: ['name', 'role', 'status'], body: () => ({ name: 'club', role: 'member', status: 'active' }) },
  'social-identities': { entity: 'social_identity', fields: ['provider', 'externalId'], body: () => ({ provider: 'google', externalId: 'g-123' }) },
  invoices: { entity: 'invoice', fields: ['number', 'amountMinor', 'currency', 'status'], body: () => ({ number: 'INV-1', amountMinor: 4200, currency: 'EUR', status: 'paid' }) },
  orders: { entity: 'order', fields: ['number', 'amountMinor', 'currency'], body: () => ({ number: 'ORD-1', amountMinor: 4200, currency: 'EUR' }) },
  transactions: { entity: 'transaction', fields: ['amountMinor', 'currency', 'status', 'invoiceId'], body: () => ({ amountMinor: -150, currency: 'USD', status: 'failed' }) },
  licenses: { entity: 'license', fields: ['applicationId', 'status', 'cancelledAt'], body: ({ applicationId }) => ({ applicationId }) },
};

const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
const JPEG = Buffer.from('ffd8ffe000104a46494600010100000100010000ffd9', 'hex');
const GIF = Buffer.from('47494638396101000100800000000000ffffff2c00000000010001000002024401003b', 'hex');
const WEBP = Buffer.concat([Buffer.from('RIFF'), Buffer.from([26, 0, 0, 0]), Buffer.from('WEBPVP8L'), Buffer.alloc(14)]);

describe('customers', () => {
  it('POST creates a customer with exactly the SPEC fields; GET returns the same', async () => {
    const body = customerBody();
    const r = await api.post('/v1/customers', body);
    expect(r.status).toBe(201);
    expect(Object.keys(r.body).sort()).toEqual([...CUSTOMER_FIELDS].sort());
    expect(r.body).toMatchObject({ ...body, legalHold: false, profilePhotoUrl: null,
      createdAt: env.clock.now().toISOString(), updatedAt: env.clock.now().toISOString() });
    expect(r.body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const g = await api.get(`/v1/customers/${r.body.id}`);
    expect(g.status).toBe(200);
    expect(g.body).toEqual(r.body);
  });

  it('an empty POST makes a customer with null fields and empty metadata', async () => {
    const r = await api.post('/v1/customers', {});
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ email: null, firstName: null, metadata: {}, legalHold: false });
  });

  it('PATCH changes only the given fields and moves updatedAt; read-only and unknown fields are 400', async () => {
    const c = await createCustomer(api);
    env.clock.advance(5000);
    const r = await api.patch(`/v1/customers/${c.id}`, { firstName: 'Augusta', metadata: { a: 'b' }, legalHold: true, tin: null });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ firstName: 'Augusta', metadata: { a: 'b' }, legalHold: true, tin: null, lastName: c.lastName, email: c.email });
    expect(r.body.updatedAt).toBe(env.clock.now().toISOString());
    expect(r.body.createdAt).toBe(c.createdAt);
    for (const bad of [{ profilePhotoUrl: 'x' }, { id: MISSING }, { createdAt: '2020-01-01T00:00:00Z' }, { nickname: 'x' }, {}]) {
      const e = await api.patch(`/v1/customers/${c.id}`, bad);
      expect(e.status, JSON.stringify(bad)).toBe(400);
      expect(e.body.code).toBe('validation_failed');
    }
    expect((await api.patch(`/v1/customers/${MISSING}`, { firstName: 'x' })).status).toBe(404);
  });

  it('GET /v1/customers?email= finds living customers case-insensitively and never deleted ones', async () => {
    const body = customerBody();
    const a = await createCustomer(api, body);
    const b = await createCustomer(api, { ...customerBody(), email: body.email });
    const found = await api.get(`/v1/customers?email=${encodeURIComponent(body.email.toUpperCase())}`);
    expect(found.body.data.map((x: { id: string }) => x.id).sort()).toEqual([a.id, b.id].sort());
    expect((await api.del(`/v1/customers/${a.id}`)).status).toBe(204);
    const after = await api.get(`/v1/customers?email=${encodeURIComponent(body.email)}`);
    expect(after.body.data.map((x: { id: string }) => x.id)).toEqual([b.id]);
    expect((await api.get('/v1/customers?email=nobody%40example.com')).body).toEqual({ data: [], nextCursor: null });
  });
});

describe('collections', () => {
  it('every collection: POST 201 and GET list with exactly the SPEC fields', async () => {
    const app = await createApplication(api);
    const c = await createCustomer(api);
    for (const [collection, spec] of Object.entries(SPEC_COLLECTIONS)) {
      const body = spec.body({ applicationId: app.id });
      const r = await api.post(`/v1/customers/${c.id}/${collection}`, body);
      expect(r.status, `${collection}: ${r.raw}`).toBe(201);
      expect(Object.keys(r.body).sort(), collection).toEqual([...RECORD, ...spec.fields].sort());
      expect(r.body, collection).toMatchObject({ ...body, customerId: c.id });
      const list = await api.get(`/v1/customers/${c.id}/${collection}`);
      expect(list.status).toBe(200);
      expect(list.body.data, collection).toEqual([r.body]);
      expect(list.body.nextCursor).toBeNull();
    }
    expect((await api.get(`/v1/customers/${MISSING}/addresses`)).status).toBe(404);
    expect((await api.post(`/v1/customers/${MISSING}/addresses`, { city: 'x' })).status).toBe(404);
  });

  it('defaults: subscription and license active, invoice open, transaction succeeded', async () => {
    const app = await createApplication(api);
    const c = await createCustomer(api);
    expect(await add(api, c.id, 'subscriptions', { plan: 'p' })).toMatchObject({ status: 'active', cancelledAt: null, giftRecipientEmail: null });
    expect(await add(api, c.id, 'licenses', { applicationId: app.id })).toMatchObject({ status: 'active', cancelledAt: null });
    expect(await add(api, c.id, 'invoices', { number: 'N', amountMinor: 1, currency: 'EUR' })).toMatchObject({ status: 'open' });
    expect(await add(api, c.id, 'transactions', { amountMinor: 1, currency: 'EUR' })).toMatchObject({ status: 'succeeded', invoiceId: null });
  });

  it('references are checked: unknown application, another customer\'s invoice → 400', async () => {
    const c = await createCustomer(api);
    const other = await createCustomer(api);
    const inv = await add(api, other.id, 'invoices', { number: 'X', amountMinor: 1, currency: 'EUR' });
    const r1 = await api.post(`/v1/customers/${c.id}/licenses`, { applicationId: MISSING });
    expect(r1.status).toBe(400);
    expect(r1.body.detail).toContain('applicationId');
    const r2 = await api.post(`/v1/customers/${c.id}/transactions`, { amountMinor: 1, currency: 'EUR', invoiceId: inv.id });
    expect(r2.status).toBe(400);
    expect(r2.body.detail).toContain('invoiceId');
  });

  it('cancel a subscription and a license: 200 with the updated record; again is a no-op; unknown 404', async () => {
    const app = await createApplication(api);
    const c = await createCustomer(api);
    const sub = await add(api, c.id, 'subscriptions', { plan: 'p' });
    const lic = await add(api, c.id, 'licenses', { applicationId: app.id });
    env.clock.advance(1000);
    const at = env.clock.now().toISOString();
    const s = await api.post(`/v1/subscriptions/${sub.id}/cancel`);
    expect(s.status).toBe(200);
    expect(s.body).toMatchObject({ id: sub.id, status: 'cancelled', cancelledAt: at, updatedAt: at, plan: 'p' });
    const l = await api.post(`/v1/licenses/${lic.id}/cancel`);
    expect(l.status).toBe(200);
    expect(l.body).toMatchObject({ id: lic.id, status: 'cancelled', cancelledAt: at });
    env.clock.advance(1000);
    expect((await api.post(`/v1/subscriptions/${sub.id}/cancel`)).body.cancelledAt).toBe(at);
    expect((await api.post(`/v1/licenses/${lic.id}/cancel`)).body.cancelledAt).toBe(at);
    expect((await api.post(`/v1/subscriptions/${MISSING}/cancel`)).status).toBe(404);
    expect((await api.post(`/v1/licenses/${MISSING}/cancel`)).status).toBe(404);
    // A license id is not a subscription id.
    expect((await api.post(`/v1/subscriptions/${lic.id}/cancel`)).status).toBe(404);
  });

  it('PATCH /v1/transactions/{id} settles a pending transaction; settled ones are final', async () => {
    const c = await createCustomer(api);
    const tx = await add(api, c.id, 'transactions', { amountMinor: 10, currency: 'EUR', status: 'pending' });
    const bad = await api.patch(`/v1/transactions/${tx.id}`, { status: 'refunded' });
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toContain('status');
    const ok = await api.patch(`/v1/transactions/${tx.id}`, { status: 'failed' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ id: tx.id, status: 'failed', amountMinor: 10 });
    expect((await api.patch(`/v1/transactions/${tx.id}`, { status: 'failed' })).status).toBe(200);
    const final = await api.patch(`/v1/transactions/${tx.id}`, { status: 'succeeded' });
    expect(final.status).toBe(409);
    expect(final.body.code).toBe('conflict');
    expect((await api.patch(`/v1/transactions/${MISSING}`, { status: 'succeeded' })).status).toBe(404);
  });
});

describe('profile photo', () => {
  it('PUT stores the raw image in the blob store; GET returns it with its type; a new PUT replaces it', async () => {
    const c = await createCustomer(api);
    expect((await api.get(`/v1/customers/${c.id}/profile-photo`)).status).toBe(404);
    const put = await api.put(`/v1/customers/${c.id}/profile-photo`, PNG, { 'content-type': 'image/png' });
    expect(put.status).toBe(204);
    expect(put.raw).toBe('');
    const res = await env.app.inject({ method: 'GET', url: `/v1/customers/${c.id}/profile-photo`, headers: { authorization: `Bearer ${env.operatorKey}` } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('image/png');
    expect(res.rawPayload.equals(PNG)).toBe(true);
    expect((await api.get(`/v1/customers/${c.id}`)).body.profilePhotoUrl).toBe(`/v1/customers/${c.id}/profile-photo`);

    const row = await env.ctx.db.selectFrom('customers').select('profilePhotoKey').where('id', '=', c.id).executeTakeFirstOrThrow();
    // Stored in the database (stored_files), never under the instance's data directory.
    expect(fs.existsSync(path.join(env.dataDir, 'blobs'))).toBe(false);
    const files = async () => (await env.ctx.db.selectFrom('storedFiles').select('key').where('key', 'like', 'photos/%').execute()).map((r) => r.key);
    expect(await files()).toContain(row.profilePhotoKey);
    const before = (await files()).length;

    expect((await api.put(`/v1/customers/${c.id}/profile-photo`, JPEG, { 'content-type': 'image/jpeg; charset=binary' })).status).toBe(204);
    const res2 = await env.app.inject({ method: 'GET', url: `/v1/customers/${c.id}/profile-photo`, headers: { authorization: `Bearer ${env.operatorKey}` } });
    expect(res2.headers['content-type']).toBe('image/jpeg');
    expect(res2.rawPayload.equals(JPEG)).toBe(true);
    // The previous file is gone: one photo per customer in storage.
    expect((await files()).length).toBe(before);
    expect(await files()).not.toContain(row.profilePhotoKey);
  });

  it('content types: only jpeg, png, gif, webp (415 otherwise); empty 400; unknown customer 404', async () => {
    const c = await createCustomer(api);
    for (const [type, bytes] of [['image/gif', GIF], ['image/webp', WEBP]] as const) {
      expect((await api.put(`/v1/customers/${c.id}/profile-photo`, bytes, { 'content-type': type })).status, type).toBe(204);
    }
    // The bytes must be the type declared (issue 17): anything sent as image/png is no longer stored and served back.
    for (const [type, bytes] of [['image/gif', PNG], ['image/png', JPEG], ['image/jpeg', Buffer.from('<html><script>alert(1)</script>')],
      ['image/webp', Buffer.from('RIFF0000WAVE')], ['image/png', Buffer.from('89504e47', 'hex')]] as const) {
      const r = await api.put(`/v1/customers/${c.id}/profile-photo`, bytes, { 'content-type': type });
      expect(r.status, type).toBe(415);
      expect(r.body.code).toBe('unsupported_media_type');
    }
    for (const type of ['text/plain', 'image/svg+xml', 'application/octet-stream', 'application/json']) {
      const r = await api.put(`/v1/customers/${c.id}/profile-photo`, type === 'application/json' ? '{}' : PNG, { 'content-type': type });
      expect(r.status, type).toBe(415);
      expect(r.body.code).toBe('unsupported_media_type');
    }
    const empty = await api.put(`/v1/customers/${c.id}/profile-photo`, Buffer.alloc(0), { 'content-type': 'image/png' });
    expect(empty.status).toBe(400);
    expect((await api.put(`/v1/customers/${MISSING}/profile-photo`, PNG, { 'content-type': 'image/png' })).status).toBe(404);
  });

  it('size limit: 1 MiB is accepted, one byte more is 413', async () => {
    const c = await createCustomer(api);
    const first = Buffer.concat([PNG, Buffer.alloc(1024 * 1024 - PNG.length, 7)]);
    expect((await api.put(`/v1/customers/${c.id}/profile-photo`, first, { 'content-type': 'image/png' })).status).toBe(204);
    const filesBefore = await env.ctx.blobs.list('photos');
    const r = await api.put(`/v1/customers/${c.id}/profile-photo`, Buffer.concat([PNG, Buffer.alloc(1024 * 1024 + 1 - PNG.length, 8)]), { 'content-type': 'image/png' });
    expect(r.status).toBe(413);
    expect(r.body.code).toBe('payload_too_large');
    // Nothing was stored: the accepted photo is still the one served, and no new file exists.
    expect(await env.ctx.blobs.list('photos')).toEqual(filesBefore);
    const photo = await env.app.inject({ method: 'GET', url: `/v1/customers/${c.id}/profile-photo`, headers: { authorization: `Bearer ${env.operatorKey}` } });
    expect(photo.statusCode).toBe(200);
    expect(photo.rawPayload.equals(first)).toBe(true);
  });
});

describe('activity log', () => {
  it('every mutation of the customer or a related record appends an entry', async () => {
    const app = await createApplication(api);
    const c = await createCustomer(api);
    await api.patch(`/v1/customers/${c.id}`, { firstName: 'New' });
    await api.put(`/v1/customers/${c.id}/profile-photo`, PNG, { 'content-type': 'image/png' });
    const ids: Record<string, string> = {};
    for (const [collection, spec] of Object.entries(SPEC_COLLECTIONS)) {
      const body = collection === 'transactions' ? { amountMinor: 1, currency: 'EUR', status: 'pending' } : spec.body({ applicationId: app.id });
      ids[collection] = (await add(api, c.id, collection, body)).id;
    }
    await api.post(`/v1/subscriptions/${ids.subscriptions}/cancel`);
    await api.post(`/v1/licenses/${ids.licenses}/cancel`);
    await api.patch(`/v1/transactions/${ids.transactions}`, { status: 'succeeded' });
    // Refused or no-op calls add nothing.
    await api.post(`/v1/subscriptions/${ids.subscriptions}/cancel`);
    await api.patch(`/v1/customers/${c.id}`, { email: 'not an email' });

    const r = await api.get(`/v1/customers/${c.id}/activity?limit=500`);
    expect(r.status).toBe(200);
    const types = r.body.data.map((e: { type: string }) => e.type);
    expect(types).toEqual([
      'customer.created', 'customer.updated', 'customer.profile_photo_updated',
      ...Object.values(SPEC_COLLECTIONS).map((s) => `${s.entity}.created`),
      'subscription.cancelled', 'license.cancelled', 'transaction.succeeded',
    ]);
    const cancel = r.body.data.find((e: { type: string }) => e.type === 'subscription.cancelled');
    expect(cancel).toMatchObject({ customerId: c.id, recordId: ids.subscriptions });
    expect(Object.keys(r.body.data[0]).sort()).toEqual(['createdAt', 'customerId', 'details', 'id', 'recordId', 'type']);
    expect((await api.get(`/v1/customers/${MISSING}/activity`)).status).toBe(404);
  });
});

describe('application keys and licenses', () => {
  it('an application sees only its own licenses of a customer; 404 without one, and once deleted', async () => {
    const [a, b, other] = [await createApplication(api), await createApplication(api), await createApplication(api)];
    const c = await createCustomer(api);
    const la = await add(api, c.id, 'licenses', { applicationId: a.id });
    const lb = await add(api, c.id, 'licenses', { applicationId: b.id });
    const keyA = client(env.app, await createAppKey(api, [a.id]));
    const keyAB = client(env.app, await createAppKey(api, [a.id, b.id]));
    const keyOther = client(env.app, await createAppKey(api, [other.id]));

    const ra = await keyA.get(`/v1/customers/${c.id}/licenses`);
    expect(ra.status).toBe(200);
    expect(ra.body.data.map((l: { id: string }) => l.id)).toEqual([la.id]);
    expect(ra.raw).not.toContain(lb.id);
    expect(ra.raw).not.toContain(b.id);
    const rab = await keyAB.get(`/v1/customers/${c.id}/licenses`);
    expect(rab.body.data.map((l: { id: string }) => l.id).sort()).toEqual([la.id, lb.id].sort());
    const ro = await keyOther.get(`/v1/customers/${c.id}/licenses`);
    expect(ro.status).toBe(404);
    expect(ro.raw).not.toContain(la.id);
    // A cancelled license is still the application's to see (it must double-check what remains).
    await api.post(`/v1/licenses/${la.id}/cancel`);
    expect((await keyA.get(`/v1/customers/${c.id}/licenses`)).body.data).toEqual([expect.objectContaining({ id: la.id, status: 'cancelled' })]);
    // The operator sees all.
    expect((await api.get(`/v1/customers/${c.id}/licenses`)).body.data).toHaveLength(2);

    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
    for (const k of [keyA, keyAB, keyOther, api]) {
      const r = await k.get(`/v1/customers/${c.id}/licenses`);
      expect(r.status).toBe(404);
      expect(r.body.code).toBe('not_found');
    }
  });

  it('application keys cannot read or write anything else of a customer', async () => {
    const a = await createApplication(api);
    const c = await createCustomer(api);
    await add(api, c.id, 'licenses', { applicationId: a.id });
    const keyA = client(env.app, await createAppKey(api, [a.id]));
    for (const [method, url] of [['GET', `/v1/customers/${c.id}`], ['GET', `/v1/customers/${c.id}/addresses`],
      ['POST', `/v1/customers/${c.id}/licenses`], ['DELETE', `/v1/customers/${c.id}`], ['GET', `/v1/customers/${c.id}/activity`]] as const) {
      const r = await keyA.call(method, url, method === 'POST' ? { applicationId: a.id } : undefined);
      expect(r.status, `${method} ${url}`).toBe(403);
    }
  });
});
