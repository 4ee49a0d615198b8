import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createApplication } from './helpers/fixtures.ts';
import { scanColumns } from './helpers/canary-scan.ts';
import { POLICY_FIELDS, effectivePolicy } from '../src/erasure/redaction-policy.ts';

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
});
afterAll(async () => env?.close());

// Every canary string starts with this run's prefix, so one search finds any of them.
const PREFIX = `cnry${crypto.randomBytes(5).toString('hex')}`;
let i = 0;
const canary = () => `${PREFIX}x${(i++).toString(36)}`;
const ipv6 = () => `fd00:${crypto.randomBytes(2).toString('hex')}:${crypto.randomBytes(2).toString('hex')}::${crypto.randomBytes(2).toString('hex')}`;

const scan = (needles: string[]) => scanColumns(env.ctx.db, needles);

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile()).map((d) => path.join(d.parentPath, d.name));
}

describe('canary: no personal value is stored in clear, before or after deletion', () => {
  it('every personal field holds a unique canary; no column of any table holds one in clear, before or after DELETE', async () => {
    const policy = effectivePolicy({});
    // Kept fields (SPEC keeps them) get ordinary values; the test pins which ones they are.
    const kept = POLICY_FIELDS.filter((f) => policy[f.key] === 'keep').map((f) => f.key).sort();
    expect(kept).toEqual(['address.city', 'address.country']);

    const ips = [ipv6(), ipv6(), ipv6()];
    const email = `${canary()}@example.com`;
    const customerBody = {
      externalId: canary(), salutation: canary(), firstName: canary(), lastName: canary(), displayName: canary(), email,
      organization: canary(), tin: canary(), lastLoginSuccessIp: ips[0], lastLoginFailureIp: ips[1], sdkRegisterIp: ips[2],
      metadata: { a: canary(), b: canary() },
    };
    const idem = (k: string) => ({ 'idempotency-key': `${k}-${crypto.randomUUID()}` });
    const createKey = idem('create');
    const created = await api.post('/v1/customers', customerBody, createKey);
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect((await api.post('/v1/customers', customerBody, createKey)).headers['idempotent-replayed']).toBe('true');
    // The update's activity entry repeats the (new) identifying values.
    expect((await api.patch(`/v1/customers/${id}`, { displayName: canary() })).status).toBe(200);

    const addressKey = idem('addr');
    const address = {
      salutation: canary(), firstName: canary(), lastName: canary(), title: canary(), company: canary(), department: canary(),
      line1: canary(), line2: canary(), city: 'Berlin', postalCode: canary(), country: 'DE', phone: canary(),
    };
    expect((await api.post(`/v1/customers/${id}/addresses`, address, addressKey)).status).toBe(201);
    expect((await api.post(`/v1/customers/${id}/addresses`, address, addressKey)).headers['idempotent-replayed']).toBe('true');
    await add(api, id, 'payment-methods', { brand: 'visa', cardId: canary(), last4: '4242', expMonth: 3, expYear: 2031, token: canary() });
    const subKey = idem('sub');
    const sub = await api.post(`/v1/customers/${id}/subscriptions`, {
      plan: 'pro', giftRecipientEmail: `${canary()}@example.org`, giftRecipientFirstName: canary(), giftRecipientLastName: canary(),
    }, subKey);
    expect(sub.status).toBe(201);
    const cancelKey = idem('cancel');
    expect((await api.post(`/v1/subscriptions/${sub.body.id}/cancel`, {}, cancelKey)).status).toBe(200);
    expect((await api.post(`/v1/subscriptions/${sub.body.id}/cancel`, {}, cancelKey)).headers['idempotent-replayed']).toBe('true');
    await add(api, id, 'social-identities', { provider: 'github', externalId: canary() });
    await add(api, id, 'memberships', { name: 'team', role: 'admin', status: 'active' });
    const inv = await add(api, id, 'invoices', { number: 'INV-1', amountMinor: 1000, currency: 'EUR' });
    await add(api, id, 'transactions', { amountMinor: 1000, currency: 'EUR', invoiceId: inv.id });
    const app = await createApplication(api);
    await add(api, id, 'licenses', { applicationId: app.id });
    const photo = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.from(canary())]);
    expect((await api.put(`/v1/customers/${id}/profile-photo`, photo, { 'content-type': 'image/png' })).status).toBe(204);
    const photoKey = (await env.ctx.db.selectFrom('customers').select('profilePhotoKey').where('id', '=', id)
      .executeTakeFirstOrThrow()).profilePhotoKey!;

    // Every field holds a distinct canary (nothing accidentally shared).
    expect(i).toBeGreaterThan(25);
    const needles = [PREFIX, ...ips];

    // The scan works: it finds a canary written into a field that is not personal (stored in clear).
    const marker = `${PREFIX}plain`;
    await add(api, id, 'orders', { number: marker, amountMinor: 1, currency: 'EUR' });
    const probe = await scan([marker]);
    expect(probe.columnsScanned).toBeGreaterThan(40);
    expect(probe.hits.map((h) => `${h.table}.${h.column}`)).toEqual(['orders.number']);
    await env.ctx.db.deleteFrom('orders').where('number', '=', marker).execute();

    // Personal data at rest is encrypted (SPEC "Personal data at rest"): before deletion no column
    // holds any of the canaries in clear, while the API reads every one of them back.
    const before = await scan(needles);
    expect(before.hits, `canaries in clear before deletion: ${JSON.stringify(before.hits)}`).toEqual([]);
    const read = await api.get(`/v1/customers/${id}`);
    expect(read.body).toMatchObject({ firstName: customerBody.firstName, email, tin: customerBody.tin, metadata: customerBody.metadata });
    expect((await api.get(`/v1/customers/${id}/addresses`)).body.data[0]).toMatchObject(address);
    expect(await env.ctx.blobs.exists(photoKey)).toBe(true);
    // The photo's stored bytes (stored_files, read raw, not through the photo store) hold no canary in clear.
    const storedPhoto = await env.ctx.db.selectFrom('storedFiles').select('content').where('key', '=', photoKey).executeTakeFirstOrThrow();
    expect(storedPhoto.content.length).toBeGreaterThan(photo.length);
    expect(Buffer.from(storedPhoto.content).includes(Buffer.from(PREFIX))).toBe(false);
    const photoBack = await env.app.inject({ method: 'GET', url: `/v1/customers/${id}/profile-photo`, headers: { authorization: `Bearer ${env.operatorKey}` } });
    expect(photoBack.rawPayload.equals(photo)).toBe(true);

    expect((await api.del(`/v1/customers/${id}`)).status).toBe(204);

    const after = await scan(needles);
    expect(after.hits, `canaries left: ${JSON.stringify(after.hits)}`).toEqual([]);

    // The photo's stored file is gone; no stored file (photos, sealed archives) holds a canary, and no file is on disk.
    expect(await env.ctx.blobs.exists(photoKey)).toBe(false);
    expect(await env.ctx.blobs.list('photos')).not.toContain(photoKey);
    const stored = await env.ctx.db.selectFrom('storedFiles').select(['key', 'content']).execute();
    expect(stored.map((f) => f.key.split('/')[0])).toContain('archives');
    for (const f of stored) expect(Buffer.from(f.content).includes(Buffer.from(PREFIX)), f.key).toBe(false);
    expect(filesUnder(path.join(env.dataDir, 'blobs'))).toEqual([]);
    expect(await env.ctx.db.selectFrom('blobDeletions').selectAll().execute()).toEqual([]);
  });
});
