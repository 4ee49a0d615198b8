import crypto from 'node:crypto';
import { expect } from 'vitest';
import type { Client } from './runtime.ts';
import { add, createApplication } from './fixtures.ts';

/**
 * A customer with a unique canary in every personal field (customer, every collection, metadata,
 * activity, stored idempotent responses, the profile photo). Every canary starts with `prefix`,
 * so one byte search finds any of them (`prefix + 'x'`; the two fields the default policy keeps use
 * `prefix + 'k'`); IPs are listed apart (they cannot carry the prefix).
 */
export async function canaryCustomer(api: Client, prefix: string) {
  let i = 0;
  const canary = () => `${prefix}x${(i++).toString(36)}`;
  const ipv6 = () => `fd00:${crypto.randomBytes(2).toString('hex')}:${crypto.randomBytes(2).toString('hex')}::${crypto.randomBytes(2).toString('hex')}`;
  const ips = [ipv6(), ipv6(), ipv6()];
  const email = `${canary()}@example.com`;
  const idem = () => ({ 'idempotency-key': crypto.randomUUID() });
  const body = {
    salutation: canary(), firstName: canary(), lastName: canary(), displayName: canary(), email,
    organization: canary(), tin: canary(), lastLoginSuccessIp: ips[0], lastLoginFailureIp: ips[1], sdkRegisterIp: ips[2],
    metadata: { a: canary(), b: canary() },
  };
  const created = await api.post('/v1/customers', body, idem());
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  expect((await api.patch(`/v1/customers/${id}`, { displayName: canary() })).status).toBe(200);
  const address = {
    salutation: canary(), firstName: canary(), lastName: canary(), title: canary(), company: canary(), department: canary(),
    line1: canary(), line2: canary(), postalCode: canary(), phone: canary(),
    // Kept by the default policy, so written in clear at redaction: canaries of their own ("k", not "x").
    city: `${prefix}kcity`, country: `${prefix}kcountry`,
  };
  expect((await api.post(`/v1/customers/${id}/addresses`, address, idem())).status).toBe(201);
  await add(api, id, 'payment-methods', { brand: 'visa', cardId: canary(), last4: '4242', expMonth: 3, expYear: 2031, token: canary() });
  const sub = await api.post(`/v1/customers/${id}/subscriptions`, {
    plan: 'pro', giftRecipientEmail: `${canary()}@example.org`, giftRecipientFirstName: canary(), giftRecipientLastName: canary(),
  }, idem());
  expect(sub.status).toBe(201);
  expect((await api.post(`/v1/subscriptions/${sub.body.id}/cancel`, {}, idem())).status).toBe(200);
  await add(api, id, 'social-identities', { provider: 'github', externalId: canary() });
  const app = await createApplication(api);
  await add(api, id, 'licenses', { applicationId: app.id });
  const photo = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.from(canary())]);
  expect((await api.put(`/v1/customers/${id}/profile-photo`, photo, { 'content-type': 'image/png' })).status).toBe(204);
  return { id, email, ips, body, address, photo, needles: [prefix, ...ips] };
}
