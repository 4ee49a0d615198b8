import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../src/audit/canonical-json.ts';
import { verifyCommand } from '../src/evidence/evidence.cli.ts';
import { rotateSigningKey } from '../src/evidence/receipt-keys.ts';
import { scrubExcerpt } from '../src/webhooks/excerpt.ts';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createAppKey, createApplication, createCustomer } from './helpers/fixtures.ts';
import { startReceiver, type Receiver } from './helpers/receiver.ts';

let env: TestEnv;
let api: Client;
let anon: Client;
let receiver: Receiver;

beforeAll(async () => {
  env = await createTestEnv({ clockStart: '2026-11-20T10:00:00Z' });
  api = client(env.app, env.operatorKey);
  anon = client(env.app, null);
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await env?.close();
});

const dispatch = () => env.services.port('webhookDispatcher').dispatchOnce();
const publicKey = (raw: string) => crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw }, format: 'jwk' });
const audit = async (type: string) => (await api.get(`/v1/audit-events?type=${type}&limit=500`)).body.data as Array<{ data: Record<string, unknown>; subjectId: string }>;

describe('signed deletion receipts', () => {
  it('verify with crypto.verify against GET /v1/receipt-keys; one altered byte fails; rotation keeps old keys', async () => {
    const c = await createCustomer(api);
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
    const plain = await api.get(`/v1/deletions/${c.id}`);
    const signed = await api.get(`/v1/deletions/${c.id}/signed`);
    expect(signed.status).toBe(200);
    expect(signed.body.algorithm).toBe('Ed25519');
    // The signed text is the RFC 8785 canonical form of the receipt the API serves.
    expect(signed.body.receipt).toBe(canonicalJson(plain.body));

    const keys = await anon.get('/v1/receipt-keys');
    expect(keys.status).toBe(200);
    const key = keys.body.keys.find((k: { keyId: string }) => k.keyId === signed.body.keyId);
    expect(key.algorithm).toBe('Ed25519');
    expect(Buffer.from(key.publicKey, 'base64url')).toHaveLength(32);
    const sig = Buffer.from(signed.body.signature, 'base64url');
    expect(crypto.verify(null, Buffer.from(signed.body.receipt), publicKey(key.publicKey), sig)).toBe(true);
    const altered = Buffer.from(signed.body.receipt);
    const at = altered.indexOf('"deletedAt"') + 20; // one byte inside the date
    altered[at] = altered[at]! ^ 0x01;
    expect(crypto.verify(null, altered, publicKey(key.publicKey), sig)).toBe(false);

    // The private key is stored sealed: its raw bytes appear nowhere in the row.
    const row = await env.ctx.db.selectFrom('receiptSigningKeys').selectAll().where('keyId', '=', key.keyId).executeTakeFirstOrThrow();
    expect(Buffer.from(row.sealedPrivateKey).includes(Buffer.from(key.publicKey, 'base64url'))).toBe(false);

    // Offline verification (the CLI), with the published keys file or one public key.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-receipt-'));
    const file = path.join(dir, 'signed.json');
    const keysFile = path.join(dir, 'keys.json');
    fs.writeFileSync(file, JSON.stringify(signed.body));
    fs.writeFileSync(keysFile, JSON.stringify(keys.body));
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
    expect(verifyCommand(['receipt', 'verify', file, '--keys', keysFile], io)).toBe(0);
    expect(lines.join('\n')).toContain(`valid: customer ${c.id}`);
    fs.writeFileSync(file, JSON.stringify({ ...signed.body, receipt: signed.body.receipt.replace('"preservedTransactions":0', '"preservedTransactions":1') }));
    expect(verifyCommand(['receipt', 'verify', file, '--public-key', key.publicKey], io)).toBe(1);
    expect(verifyCommand(['receipt', 'verify', file], io)).toBe(2);
    // A base64url public key may begin with "-": still read as the option's value.
    const dashed = crypto.generateKeyPairSync('ed25519');
    let raw = String(dashed.publicKey.export({ format: 'jwk' }).x);
    for (let i = 0; !raw.startsWith('-') && i < 2000; i++) raw = String(crypto.generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x);
    expect(raw.startsWith('-')).toBe(true);
    expect(verifyCommand(['receipt', 'verify', file, '--public-key', raw], io)).toBe(1);

    // Rotation: a new key signs, the old one stays published and still verifies the old signature.
    const rotated = await rotateSigningKey(env.ctx.db, env.ctx.secrets.receiptSealKey, env.clock.now(), null);
    expect(rotated.retired).toEqual([key.keyId]);
    const again = await api.get(`/v1/deletions/${c.id}/signed`);
    expect(again.body.keyId).toBe(rotated.keyId);
    const after = (await anon.get('/v1/receipt-keys')).body.keys as Array<{ keyId: string; publicKey: string; retiredAt: string | null }>;
    expect(after.map((k) => k.keyId)).toEqual([key.keyId, rotated.keyId]);
    expect(after[0]!.retiredAt).not.toBeNull();
    expect(crypto.verify(null, Buffer.from(signed.body.receipt), publicKey(after[0]!.publicKey), sig)).toBe(true);
    const newKey = after.find((k) => k.keyId === rotated.keyId)!;
    expect(crypto.verify(null, Buffer.from(again.body.receipt), publicKey(newKey.publicKey), Buffer.from(again.body.signature, 'base64url'))).toBe(true);
    expect((await audit('receipt_key.rotated'))[0]!.data.keyId).toBe(rotated.keyId);
    expect((await api.get(`/v1/deletions/${crypto.randomUUID()}/signed`)).status).toBe(404);
    expect((await anon.get(`/v1/deletions/${c.id}/signed`)).status).toBe(401);
  });

  it('GET /v1/deletions lists receipts newest first, by range and by page', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      env.clock.advance(60_000);
      const c = await createCustomer(api);
      expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
      ids.push(c.id);
    }
    const from = new Date(env.clock.now().getTime() - 150_000).toISOString();
    const page1 = await api.get(`/v1/deletions?from=${from}&limit=2`);
    expect(page1.status).toBe(200);
    expect(page1.body.data.map((r: { customerId: string }) => r.customerId)).toEqual([ids[2], ids[1]]);
    const page2 = await api.get(`/v1/deletions?from=${from}&limit=2&cursor=${page1.body.nextCursor}`);
    expect(page2.body.data.map((r: { customerId: string }) => r.customerId)).toEqual([ids[0]]);
    expect(page2.body.nextCursor).toBeNull();
    const to = new Date(env.clock.now().getTime() - 30_000).toISOString();
    expect((await api.get(`/v1/deletions?from=${from}&to=${to}`)).body.data.map((r: { customerId: string }) => r.customerId)).toEqual([ids[1], ids[0]]);
    expect((await api.get(`/v1/deletions?from=${to}&to=${from}`)).status).toBe(400);
    expect((await api.get('/v1/deletions?from=yesterday')).status).toBe(400);
  });
});

describe('GET /v1/stats', () => {
  it('counts per local day and times confirmations per application', async () => {
    env.clock.set(new Date('2026-12-01T09:00:00Z'));
    const app = await createApplication(api, 'stats-app');
    const key = await createAppKey(api, [app.id]);
    const partner = client(env.app, key);
    const customers = [await createCustomer(api), await createCustomer(api)];
    for (const c of customers) await add(api, c.id, 'licenses', { applicationId: app.id });
    for (const c of customers) expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
    env.clock.set(new Date('2026-12-02T09:00:00Z')); // 24 h later
    expect((await partner.post('/v1/data-deletions/confirmations', { subscriptionId: customers[0]!.id })).status).toBe(200);
    env.clock.set(new Date('2026-12-03T21:00:00Z')); // 60 h after required
    expect((await partner.post('/v1/data-deletions/confirmations', { subscriptionId: customers[1]!.id })).status).toBe(200);

    const s = await api.get('/v1/stats?from=2026-12-01&to=2026-12-03&zone=UTC');
    expect(s.status).toBe(200);
    const byDay = Object.fromEntries(s.body.days.map((d: { day: string }) => [d.day, d]));
    expect(Object.keys(byDay)).toEqual(['2026-12-01', '2026-12-02', '2026-12-03']);
    expect(byDay['2026-12-01'].deletions).toBe(2);
    expect(byDay['2026-12-01'].casesRequired).toBe(2);
    expect(byDay['2026-12-02'].confirmations.deleted).toBe(1);
    expect(byDay['2026-12-03'].confirmations.deleted).toBe(1);
    const timing = s.body.applications.find((a: { applicationId: string }) => a.applicationId === app.id);
    expect(timing.confirmed).toBe(2);
    expect(timing.medianSecondsToConfirm).toBe(42 * 3600); // (24 h + 60 h) / 2
    expect(timing.p95SecondsToConfirm).toBe(Math.round(24 * 3600 + 0.95 * 36 * 3600));

    // In Auckland (UTC+13) the 21:00 UTC confirmation happened on the next local day.
    const nz = await api.get('/v1/stats?from=2026-12-01&to=2026-12-04&zone=Pacific/Auckland');
    const nzDays = Object.fromEntries(nz.body.days.map((d: { day: string; confirmations: { deleted: number } }) => [d.day, d.confirmations.deleted]));
    expect(nzDays['2026-12-04']).toBe(1);
    expect(nzDays['2026-12-03']).toBe(0);

    // Overdue at a day's end: a required case unconfirmed for longer than overdueAfterDays.
    expect((await api.patch('/v1/settings', { overdueAfterDays: 1 })).status).toBe(200);
    const c3 = await createCustomer(api);
    await add(api, c3.id, 'licenses', { applicationId: app.id });
    expect((await api.del(`/v1/customers/${c3.id}`)).status).toBe(204); // required 2026-12-03T21:00Z: overdue from 12-04T21:00Z
    const od = await api.get('/v1/stats?from=2026-12-03&to=2026-12-05&zone=UTC');
    expect(od.body.days.map((d: { overdueAtEndOfDay: number }) => d.overdueAtEndOfDay)).toEqual([0, 1, 1]);

    expect((await api.get('/v1/stats?zone=Mars/Olympus')).status).toBe(400);
    expect((await api.get('/v1/stats?from=2026-12-05&to=2026-12-01')).status).toBe(400);
    expect((await api.get('/v1/stats?from=2026-02-30')).status).toBe(400);
    expect((await api.get('/v1/stats?from=2020-01-01&to=2026-01-01')).status).toBe(400);
    expect((await api.patch('/v1/settings', { overdueAfterDays: 30 })).status).toBe(200);
  });
});

describe('delivery health, retry now, test webhook', () => {
  it('shows a failing endpoint with a scrubbed excerpt and next retry; retry reuses the webhook-id; test events are no notice', async () => {
    let answer = 500;
    receiver.on('/failing', (_r, res) => {
      res.writeHead(answer, { 'content-type': 'text/plain' });
      res.end(answer === 500 ? 'Internal error for jane.doe@example.com (+49 30 1234567) at 10.0.0.7: <b>db down</b>' : '');
    });
    const app = await createApplication(api, 'failing-app', receiver.url('/failing'));
    const c = await createCustomer(api);
    await add(api, c.id, 'licenses', { applicationId: app.id });
    const other = await createCustomer(api);
    await add(api, other.id, 'licenses', { applicationId: app.id });
    // A case becomes required while the customer lives (grace 0 + the grace job), then is notified.
    expect((await api.patch('/v1/settings', { gracePeriodDays: 0 })).status).toBe(200);
    const lic = (await api.get(`/v1/customers/${c.id}/licenses`)).body.data[0];
    expect((await api.post(`/v1/licenses/${lic.id}/cancellation`, { reason: 'contract_ended' })).status).toBe(200);
    expect((await api.post('/v1/jobs/grace-periods/run')).status).toBe(200);
    expect((await api.post('/v1/jobs/deletion-notifications/run')).status).toBe(200);
    await dispatch();

    const failing = await api.get(`/v1/delivery-health?failing=true&applicationId=${app.id}`);
    expect(failing.status).toBe(200);
    expect(failing.body.data).toHaveLength(1);
    const h = failing.body.data[0];
    expect(h).toMatchObject({ subscriptionId: c.id, applicationId: app.id, status: 'pending', lastOutcome: 'failed', lastStatusCode: 500, failing: true });
    expect(new Date(h.nextRetryAt).getTime()).toBeGreaterThan(env.clock.now().getTime());
    expect(h.responseExcerpt).toContain('Internal error for [email]');
    expect(h.responseExcerpt).not.toMatch(/jane|1234567|10\.0\.0\.7|<b>/);
    expect((await api.get(`/v1/delivery-health?failing=false&applicationId=${app.id}`)).body.data).toHaveLength(0);
    const appHealth = await api.get(`/v1/applications/${app.id}/delivery-health`);
    expect(appHealth.body).toMatchObject({ enabled: true, pending: 1, failing: 1, last: { lastStatusCode: 500, webhookId: h.webhookId } });

    // Retry now: the same webhook-id goes out at once, not waiting for the backoff.
    const before = receiver.to('/failing').length;
    answer = 204;
    const retry = await api.post(`/v1/applications/${app.id}/deliveries/${h.webhookId}/retry`);
    expect(retry.status).toBe(202);
    await dispatch();
    const sent = receiver.to('/failing');
    expect(sent.length).toBe(before + 1);
    expect(sent.at(-1)!.headers['webhook-id']).toBe(h.webhookId);
    expect((await api.get(`/v1/delivery-health?failing=true&applicationId=${app.id}`)).body.data).toHaveLength(0);
    expect((await api.post(`/v1/applications/${app.id}/deliveries/${h.webhookId}/retry`)).status).toBe(409);
    expect((await api.post(`/v1/applications/${app.id}/deliveries/msg_nope/retry`)).status).toBe(404);
    expect((await audit('webhook.retry_requested')).some((e) => e.data.webhookId === h.webhookId)).toBe(true);

    // A test webhook: delivered and logged, audited, never a notice.
    const caseBefore = (await api.get(`/v1/data-deletions?applicationId=${app.id}&subscriptionId=${c.id}`)).body.data[0];
    const test = await api.post(`/v1/applications/${app.id}/test-webhook`);
    expect(test.status).toBe(202);
    await dispatch();
    const testReq = receiver.to('/failing').at(-1)!;
    expect(testReq.headers['webhook-id']).toBe(test.body.webhookId);
    expect(JSON.parse(testReq.body)).toMatchObject({ type: 'webhook.test', data: { applicationId: app.id } });
    const caseAfter = (await api.get(`/v1/data-deletions?applicationId=${app.id}&subscriptionId=${c.id}`)).body.data[0];
    expect(caseAfter.lastNotifiedDay).toBe(caseBefore.lastNotifiedDay);
    expect(caseAfter.updatedAt).toBe(caseBefore.updatedAt);
    expect((await audit('webhook.test_sent')).some((e) => e.data.webhookId === test.body.webhookId)).toBe(true);
    expect((await api.post(`/v1/applications/${crypto.randomUUID()}/test-webhook`)).status).toBe(404);

    // The excerpt goes with the customer's deletion.
    const rows = () => env.ctx.db.selectFrom('webhookDeliveries').select('responseExcerpt').where('outboxId', '=', h.webhookId).execute();
    expect((await rows()).some((r) => r.responseExcerpt)).toBe(true);
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
    expect((await rows()).every((r) => r.responseExcerpt === null)).toBe(true);
    expect((await api.patch('/v1/settings', { gracePeriodDays: 90 })).status).toBe(200);
  });

  it('scrubs excerpts of anything that may identify a person', () => {
    expect(scrubExcerpt('user 3fa85f64-5717-4562-b3fc-2c963f66afa6 card 4242 4242 4242 4242 ip 2001:db8::1 see https://x.example/a?e=b'))
      .toBe('user [id] card [number] ip [ip] see [url]');
    expect(scrubExcerpt('x'.repeat(400))!.length).toBe(160);
    expect(scrubExcerpt('   ')).toBeNull();
  });
});

describe('reasoned actions', () => {
  it('legal hold, license cancel and endpoint disable audit a reason code; the note goes to the activity log only', async () => {
    const c = await createCustomer(api);
    const note = 'Requested by counsel Jane Roe, ticket 77';
    const on = await api.put(`/v1/customers/${c.id}/legal-hold`, { legalHold: true, reason: 'litigation', note });
    expect(on.status).toBe(200);
    expect((await api.get(`/v1/customers/${c.id}`)).body.legalHold).toBe(true);
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(409);
    const placed = (await audit('customer.legal_hold_placed')).find((e) => e.subjectId === c.id)!;
    expect(placed.data).toMatchObject({ reason: 'litigation' });
    expect(JSON.stringify(placed)).not.toContain('Jane');
    const activity = (await api.get(`/v1/customers/${c.id}/activity`)).body.data as Array<{ type: string; details: Record<string, unknown> }>;
    expect(activity.find((a) => a.type === 'customer.legal_hold_placed')!.details).toMatchObject({ reason: 'litigation', note });
    expect((await api.put(`/v1/customers/${c.id}/legal-hold`, { legalHold: false, reason: 'because' })).status).toBe(400);
    expect((await api.put(`/v1/customers/${c.id}/legal-hold`, { legalHold: false })).status).toBe(400);
    expect((await api.put(`/v1/customers/${c.id}/legal-hold`, { legalHold: false, reason: 'matter_closed' })).status).toBe(200);
    expect((await api.get(`/v1/customers/${c.id}`)).body.legalHold).toBe(false);

    const app = await createApplication(api, 'reasoned');
    const lic = await add(api, c.id, 'licenses', { applicationId: app.id });
    const cancelled = await api.post(`/v1/licenses/${lic.id}/cancellation`, { reason: 'non_payment', note: 'card declined twice' });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    const cases = (await api.get(`/v1/data-deletions?applicationId=${app.id}&subscriptionId=${c.id}`)).body.data;
    expect(cases).toHaveLength(1);
    expect(cases[0].status).toBe('grace');
    const lc = (await audit('license.cancelled')).find((e) => e.subjectId === lic.id)!;
    expect(lc.data).toMatchObject({ reason: 'non_payment', applicationId: app.id });
    expect(JSON.stringify(lc)).not.toContain('declined');

    const disabled = await api.post(`/v1/applications/${app.id}/disable`, { reason: 'endpoint_compromised' });
    expect(disabled.status).toBe(200);
    expect(disabled.body).toMatchObject({ enabled: false, disabledReason: 'operator' });
    expect((await audit('application.disabled')).find((e) => e.subjectId === app.id)!.data).toMatchObject({ reasonCode: 'endpoint_compromised' });
    expect((await api.post(`/v1/applications/${app.id}/disable`, { reason: 'whim' })).status).toBe(400);
  });
});

describe('audit log browsing', () => {
  it('lists newest first with its own cursor, and lists the event types recorded', async () => {
    const asc = (await api.get('/v1/audit-events?limit=500')).body.data as Array<{ seq: number }>;
    const p1 = await api.get('/v1/audit-events?order=desc&limit=3');
    expect(p1.body.data.map((e: { seq: number }) => e.seq)).toEqual(asc.map((e) => e.seq).reverse().slice(0, 3));
    const p2 = await api.get(`/v1/audit-events?order=desc&limit=3&cursor=${p1.body.nextCursor}`);
    expect(p2.body.data.map((e: { seq: number }) => e.seq)).toEqual(asc.map((e) => e.seq).reverse().slice(3, 6));
    const types = await api.get('/v1/audit-events/types');
    expect(types.status).toBe(200);
    const byType = Object.fromEntries(types.body.types.map((t: { type: string; count: number }) => [t.type, t.count]));
    expect(byType['customer.deleted']).toBe((await api.get('/v1/audit-events?type=customer.deleted&limit=500')).body.data.length);
    expect((await api.get('/v1/audit-events?order=sideways')).status).toBe(400);
    expect((await anon.get('/v1/audit-events/types')).status).toBe(401);
  });
});
