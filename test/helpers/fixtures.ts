import { expect } from 'vitest';
import type { Client } from './runtime.ts';

let counter = 0;
const uniq = () => `${Date.now().toString(36)}${(counter++).toString(36)}`;

export async function createApplication(api: Client, name = `app-${uniq()}`, webhookUrl: string | null = null) {
  const r = await api.post('/v1/applications', { name, webhookUrl });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body as { id: string; webhookSecret: string; name: string };
}

export async function createAppKey(api: Client, applicationIds: string[]) {
  const r = await api.post('/v1/api-keys', { kind: 'application', applicationIds });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.key as string;
}

export function customerBody(tag = uniq()) {
  return {
    salutation: 'Dr.', firstName: `Ada${tag}`, lastName: `Lovelace${tag}`, displayName: `Ada L ${tag}`,
    email: `ada.${tag}@example.com`, organization: `Analytical ${tag}`, tin: `DE${tag}`,
    lastLoginSuccessIp: '203.0.113.7', lastLoginFailureIp: '198.51.100.23', sdkRegisterIp: '2001:db8::1',
    metadata: { favouriteColour: `blue-${tag}`, tier: 'gold' },
  };
}

export async function createCustomer(api: Client, body: Record<string, unknown> = customerBody()) {
  const r = await api.post('/v1/customers', body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body as { id: string; email: string } & Record<string, unknown>;
}

export async function add(api: Client, customerId: string, collection: string, body: Record<string, unknown>) {
  const r = await api.post(`/v1/customers/${customerId}/${collection}`, body);
  expect(r.status, `${collection}: ${JSON.stringify(r.body)}`).toBe(201);
  return r.body as { id: string } & Record<string, unknown>;
}

/** The benchmark's standard customer, smaller counts by default; returns the created ids. */
export async function populate(api: Client, customerId: string, applicationIds: string[] = []) {
  const t = uniq();
  await add(api, customerId, 'addresses', {
    salutation: 'Ms', firstName: `F${t}`, lastName: `L${t}`, title: 'Prof', company: `Co${t}`, department: `Dep${t}`,
    line1: `1 Street ${t}`, line2: `Flat ${t}`, city: 'Berlin', postalCode: '10115', country: 'DE', phone: '+49 30 1234567',
  });
  await add(api, customerId, 'payment-methods', { brand: 'visa', cardId: `card_${t}`, last4: '4242', expMonth: 12, expYear: 2030, token: `tok_${t}` });
  const sub = await add(api, customerId, 'subscriptions', {
    plan: 'pro', giftRecipientEmail: `gift.${t}@example.org`, giftRecipientFirstName: `G${t}`, giftRecipientLastName: `R${t}`,
  });
  await add(api, customerId, 'memberships', { name: 'team', role: 'admin', status: 'active' });
  await add(api, customerId, 'social-identities', { provider: 'github', externalId: `gh-${t}` });
  const inv = await add(api, customerId, 'invoices', { number: `INV-${t}`, amountMinor: 1999, currency: 'EUR' });
  await add(api, customerId, 'orders', { number: `ORD-${t}`, amountMinor: 1999, currency: 'EUR' });
  const tx = await add(api, customerId, 'transactions', { amountMinor: 1999, currency: 'EUR', status: 'succeeded', invoiceId: inv.id });
  const licenses = [];
  for (const applicationId of applicationIds) licenses.push(await add(api, customerId, 'licenses', { applicationId }));
  return { subscriptionId: sub.id, invoiceId: inv.id, transactionId: tx.id, licenseIds: licenses.map((l) => l.id) };
}
