import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import pino from 'pino';
import { DAY_MS } from '../src/clock.ts';
import { loadConfig } from '../src/config.ts';
import { startRuntime } from '../src/runtime.ts';
import { BACKLOG_BATCH } from '../src/erasure/redaction-backlog.ts';
import { POLICY_FIELDS, defaultPolicy } from '../src/erasure/redaction-policy.ts';
import { client, createPgDatabase, createTestEnv, TEST_DB, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createCustomer } from './helpers/fixtures.ts';

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
});
afterAll(async () => env?.close());

const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
let n = 0;

/** A customer with every field of SPEC's redaction table filled, plus a photo. */
async function fullCustomer() {
  const t = `${Date.now().toString(36)}${n++}`;
  const c = await createCustomer(api, {
    externalId: `ext-${t}`, salutation: 'Dr.', firstName: `Ada${t}`, lastName: `Lovelace${t}`, displayName: `Ada L ${t}`,
    email: `ada.${t}@example.com`, organization: `Analytical ${t}`, tin: `DE${t}`,
    lastLoginSuccessIp: '203.0.113.7', lastLoginFailureIp: '198.51.100.23', sdkRegisterIp: '2001:db8:1::1',
    metadata: { favouriteColour: `blue-${t}`, tier: 'gold' },
  });
  await add(api, c.id, 'addresses', {
    salutation: 'Ms', firstName: `F${t}`, lastName: `L${t}`, title: 'Prof', company: `Co${t}`, department: `Dep${t}`,
    line1: `1 Street ${t}`, line2: `Flat ${t}`, city: 'Berlin', postalCode: '10115', country: 'DE', phone: '+49 30 1234567',
  });
  await add(api, c.id, 'payment-methods', { brand: 'visa', cardId: `card_${t}`, last4: '4242', expMonth: 12, expYear: 2030, token: `tok_${t}` });
  await add(api, c.id, 'subscriptions', {
    plan: 'pro', giftRecipientEmail: `gift.${t}@example.org`, giftRecipientFirstName: `G${t}`, giftRecipientLastName: `R${t}`,
  });
  await add(api, c.id, 'social-identities', { provider: 'github', externalId: `gh-${t}` });
  expect((await api.put(`/v1/customers/${c.id}/profile-photo`, PNG, { 'content-type': 'image/png' })).status).toBe(204);
  const before = await rowsOf(c.id);
  return { id: c.id, before };
}

/** The customer's rows as stored, personal values decrypted while its key exists (clear once redacted: masks, kept values). */
async function rowsOf(id: string) {
  const db = env.ctx.db;
  const dek = (await env.ctx.crypto.keysOf(db, [id])).get(id);
  const dec = <T extends Record<string, unknown>>(table: string, row: T): T => env.ctx.crypto.decryptRow(table, row, String(row.id), dek);
  return {
    customer: dec('customers', await db.selectFrom('customers').selectAll().where('id', '=', id).executeTakeFirstOrThrow()),
    address: dec('addresses', await db.selectFrom('addresses').selectAll().where('customerId', '=', id).executeTakeFirstOrThrow()),
    payment_method: dec('payment_methods', await db.selectFrom('paymentMethods').selectAll().where('customerId', '=', id).executeTakeFirstOrThrow()),
    subscription: dec('subscriptions', await db.selectFrom('subscriptions').selectAll().where('customerId', '=', id).executeTakeFirstOrThrow()),
    social_identity: dec('social_identities', await db.selectFrom('socialIdentities').selectAll().where('customerId', '=', id).executeTakeFirstOrThrow()),
  };
}
type Rows = Awaited<ReturnType<typeof rowsOf>>;

const NAME = /^[A-Z][a-z]{2,}$/;
const EMAIL = /^[a-z0-9._-]+@[a-z0-9-]+\.invalid$/;
const PHONE = /^\+[0-9][0-9 ]{6,}[0-9]$/;
const TEXT = /^\S.{3,}$/;
const TOKEN = /^[A-Za-z0-9_-]{16,}$/;

type Expect = 'null' | 'name' | 'email' | 'phone' | 'text' | 'token' | 'digits4' | 'month' | 'year' | 'metadata' | 'photo';
/** SPEC's default redaction table, row by row, with the exact expectation per field. */
const SPEC_TABLE: Record<keyof Rows, Record<string, Expect>> = {
  customer: {
    // SPEC "Customer fields": externalId is identifying and nullified when the customer is redacted.
    externalId: 'null',
    salutation: 'null', organization: 'null', lastLoginSuccessIp: 'null', lastLoginFailureIp: 'null', tin: 'null', sdkRegisterIp: 'null',
    firstName: 'name', lastName: 'name', displayName: 'name', email: 'email', metadata: 'metadata', profilePhoto: 'photo',
  },
  address: {
    salutation: 'null', title: 'null', postalCode: 'null',
    firstName: 'name', lastName: 'name', company: 'text', department: 'text', line1: 'text', line2: 'text', phone: 'phone',
  },
  subscription: { giftRecipientEmail: 'email', giftRecipientFirstName: 'name', giftRecipientLastName: 'name' },
  payment_method: { cardId: 'token', last4: 'digits4', expMonth: 'month', expYear: 'year', token: 'token' },
  social_identity: { externalId: 'token' },
};

function checkField(entity: string, field: string, exp: Expect, before: Rows, after: Rows, other: Rows) {
  const label = `${entity}.${field}`;
  const row = (r: Rows) => r[entity as keyof Rows] as unknown as Record<string, unknown>;
  const was = row(before)[field];
  const now = row(after)[field];
  const theirs = row(other)[field];
  if (exp === 'photo') {
    expect(row(after).profilePhotoKey, label).toBeNull();
    expect(row(after).profilePhotoContentType, label).toBeNull();
    return;
  }
  expect(was, `${label} was filled before deletion`).not.toBeNull();
  if (exp === 'null') {
    expect(now, label).toBeNull();
    return;
  }
  expect(now, label).not.toBeNull();
  expect(now, label).not.toEqual(was);
  // Month, year and 4 digits have too few values to always differ between two customers.
  if (!['month', 'year', 'digits4'].includes(exp)) expect(now, `${label} differs between customers`).not.toEqual(theirs);
  switch (exp) {
    case 'name': expect(now, label).toMatch(NAME); break;
    case 'email': expect(now, label).toMatch(EMAIL); break;
    case 'phone': expect(now, label).toMatch(PHONE); break;
    case 'text': expect(now, label).toMatch(TEXT); expect(String(now)).not.toContain(String(was)); break;
    case 'token': expect(now, label).toMatch(TOKEN); expect(String(now)).not.toContain(String(was)); break;
    case 'digits4': expect(now, label).toMatch(/^[0-9]{4}$/); break;
    case 'month': expect(Number.isInteger(now) && (now as number) >= 1 && (now as number) <= 12, label).toBe(true); break;
    case 'year': expect(Number.isInteger(now) && (now as number) >= 2000 && (now as number) <= 2099, label).toBe(true); break;
    case 'metadata': {
      const m = now as Record<string, string>;
      expect(Object.keys(m).sort(), label).toEqual(Object.keys(was as object).sort());
      for (const [k, v] of Object.entries(was as Record<string, string>)) {
        expect(typeof m[k]).toBe('string');
        expect(m[k], `${label}.${k}`).not.toEqual(v);
        expect(m[k], `${label}.${k} differs between customers`).not.toEqual((theirs as Record<string, string>)[k]);
      }
      break;
    }
  }
}

describe('redaction at deletion (automatic personal data deletion on)', () => {
  it('the default policy is exactly SPEC\'s redaction table (plus fields SPEC leaves kept)', () => {
    const policy = defaultPolicy();
    const fromSpec: Record<string, string> = {};
    for (const [entity, fields] of Object.entries(SPEC_TABLE)) {
      for (const [field, exp] of Object.entries(fields)) {
        fromSpec[`${entity}.${field}`] = exp === 'null' ? 'nullify' : exp === 'photo' ? 'delete' : 'mask';
      }
    }
    const acting = Object.fromEntries(Object.entries(policy).filter(([, a]) => a !== 'keep'));
    expect(acting).toEqual(fromSpec);
    // Personal fields SPEC does not list are kept: coarse location for anonymized analytics.
    expect(Object.entries(policy).filter(([, a]) => a === 'keep').map(([k]) => k).sort()).toEqual(['address.city', 'address.country']);
  });

  it('every row of SPEC\'s redaction table, field by field, on two customers', async () => {
    const a = await fullCustomer();
    const b = await fullCustomer();
    const photoA = a.before.customer.profilePhotoKey!;
    expect(await env.ctx.blobs.exists(photoA)).toBe(true);
    expect((await api.del(`/v1/customers/${a.id}`)).status).toBe(204);
    expect((await api.del(`/v1/customers/${b.id}`)).status).toBe(204);
    const afterA = await rowsOf(a.id);
    const afterB = await rowsOf(b.id);
    for (const [entity, fields] of Object.entries(SPEC_TABLE)) {
      for (const [field, exp] of Object.entries(fields)) {
        checkField(entity, field, exp, a.before, afterA, afterB);
        checkField(entity, field, exp, b.before, afterB, afterA);
      }
    }
    // Kept: not personal, or kept on purpose.
    expect(afterA.address.city).toBe('Berlin');
    expect(afterA.payment_method.brand).toBe('visa');
    expect(afterA.subscription.plan).toBe('pro');
    expect(afterA.social_identity.provider).toBe('github');
    expect(afterA.customer.redactedAt).toEqual(new Date('2026-03-02T10:00:00Z'));
    // The photo file is gone from storage, and no deletion is left pending.
    expect(await env.ctx.blobs.exists(photoA)).toBe(false);
    expect(await env.ctx.blobs.exists(b.before.customer.profilePhotoKey!)).toBe(false);
    expect(await env.ctx.db.selectFrom('blobDeletions').selectAll().execute()).toEqual([]);
  });

  it('the activity log is deleted except one customer.deleted entry with masked identifying details', async () => {
    const { id, before } = await fullCustomer();
    await api.patch(`/v1/customers/${id}`, { firstName: 'Changed' });
    const n0 = await env.ctx.db.selectFrom('activity').select('id').where('customerId', '=', id).execute();
    expect(n0.length).toBeGreaterThan(5);
    expect((await api.del(`/v1/customers/${id}`)).status).toBe(204);
    const left = await env.ctx.db.selectFrom('activity').selectAll().where('customerId', '=', id).execute();
    expect(left).toHaveLength(1);
    expect(left[0]!.type).toBe('customer.deleted');
    const d = left[0]!.details as { email: string; displayName: string; counts: Record<string, number> };
    expect(d.email).toMatch(EMAIL);
    expect(d.email).not.toBe(before.customer.email);
    expect(d.displayName).toMatch(NAME);
    expect(d.counts).toMatchObject({ customer: 1, addresses: 1 });
    expect(JSON.stringify(left)).not.toContain(before.customer.email!);
  });

  it('stored idempotent responses holding the customer are purged; a replay does not repeat the request', async () => {
    const key = { 'idempotency-key': `k-${Date.now()}` };
    const body = { email: `idem.${Date.now()}@example.com`, firstName: 'Idem' };
    const created = await api.post('/v1/customers', body, key);
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const sub = await api.post(`/v1/customers/${id}/subscriptions`,
      { plan: 'p', giftRecipientEmail: `gift.idem.${Date.now()}@example.com` }, { 'idempotency-key': `s-${Date.now()}` });
    const cancelKey = { 'idempotency-key': `c-${Date.now()}` };
    const cancel = await api.post(`/v1/subscriptions/${sub.body.id}/cancel`, {}, cancelKey);
    expect(cancel.status).toBe(200);
    expect((await api.post(`/v1/subscriptions/${sub.body.id}/cancel`, {}, cancelKey)).headers['idempotent-replayed']).toBe('true');

    expect((await api.del(`/v1/customers/${id}`)).status).toBe(204);
    const rows = await sql<{ response_body: unknown }>`SELECT response_body::text AS response_body FROM idempotency_keys`.execute(env.ctx.db);
    const text = JSON.stringify(rows.rows);
    expect(text).not.toContain(body.email);
    expect(text).not.toContain('gift.idem.');
    expect(text).not.toContain(id);

    const count = async () => Number((await sql<{ n: number }>`SELECT count(*)::int AS n FROM customers`.execute(env.ctx.db)).rows[0]!.n);
    const before = await count();
    const replay = await api.post('/v1/customers', body, key);
    expect(replay.status).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.raw).not.toContain(body.email);
    expect(await count()).toBe(before); // not created a second time
  });

  it('the receipt records the run and the policy version; a later policy change leaves old receipts as they were', async () => {
    const first = await fullCustomer();
    const v1 = (await api.get('/v1/settings')).body.policyVersion as number;
    expect((await api.del(`/v1/customers/${first.id}`)).status).toBe(204);
    const receipt1 = await api.get(`/v1/deletions/${first.id}`);
    expect(receipt1.status).toBe(200);
    expect(receipt1.body.redaction).toMatchObject({
      ran: true, via: 'deletion', policyVersion: v1, redactedAt: '2026-03-02T10:00:00.000Z',
    });
    expect(receipt1.body.redaction.policy['customer.organization']).toBe('nullify');
    expect(receipt1.raw).not.toContain(first.before.customer.email!);

    const patched = await api.patch('/v1/settings', { redactionPolicy: { 'customer.organization': 'mask', 'address.city': 'nullify' } });
    expect(patched.body.policyVersion).toBe(v1 + 1);
    expect((await api.get(`/v1/deletions/${first.id}`)).body).toEqual(receipt1.body);

    // The override applies to the next deletion: organization masked (shape kept), city nullified.
    const second = await fullCustomer();
    expect((await api.del(`/v1/customers/${second.id}`)).status).toBe(204);
    const after = await rowsOf(second.id);
    expect(after.customer.organization).toMatch(TEXT);
    expect(after.customer.organization).not.toBe(second.before.customer.organization);
    expect(after.address.city).toBeNull();
    const receipt2 = await api.get(`/v1/deletions/${second.id}`);
    expect(receipt2.body.redaction).toMatchObject({ ran: true, policyVersion: v1 + 1 });
    expect(receipt2.body.redaction.policy).toMatchObject({ 'customer.organization': 'mask', 'address.city': 'nullify' });

    // keep (confirmed) leaves the field as it was.
    await api.patch('/v1/settings', {
      redactionPolicy: { 'customer.organization': null, 'address.city': null, 'customer.email': 'keep', 'customer.profilePhoto': 'keep' },
      confirmKeepIdentifying: true,
    });
    const third = await fullCustomer();
    expect((await api.del(`/v1/customers/${third.id}`)).status).toBe(204);
    const kept = await rowsOf(third.id);
    expect(kept.customer.email).toBe(third.before.customer.email);
    expect(kept.customer.profilePhotoKey).toBe(third.before.customer.profilePhotoKey);
    expect(await env.ctx.blobs.exists(kept.customer.profilePhotoKey!)).toBe(true);
    expect(kept.customer.firstName).not.toBe(third.before.customer.firstName);
    await api.patch('/v1/settings', { redactionPolicy: { 'customer.email': null, 'customer.profilePhoto': null } });
  });

  it('the preview says whether redaction will run and under which policy version', async () => {
    const c = await createCustomer(api);
    const p = await api.get(`/v1/customers/${c.id}/deletion-preview`);
    expect(p.body.redaction).toMatchObject({ automatic: true, policyVersion: expect.any(Number) });
    expect(p.body.redaction.fieldActions.mask).toBeGreaterThan(10);
  });
});

describe('setting off, then the redaction backlog', () => {
  it('off: DELETE soft deletes only; on later: the retention job redacts every soft-deleted customer, audited', async () => {
    expect((await api.patch('/v1/settings', { automaticPersonalDataDeletion: false })).status).toBe(200);
    const a = await fullCustomer();
    const b = await fullCustomer();
    for (const c of [a, b]) expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);

    // Soft delete only: every value is still there, the file too, and the receipt says redaction did not run.
    const still = await rowsOf(a.id);
    expect(still.customer.email).toBe(a.before.customer.email);
    expect(still.customer.deletedAt).not.toBeNull();
    expect(still.customer.redactedAt).toBeNull();
    expect(still.address.phone).toBe(a.before.address.phone);
    expect(await env.ctx.blobs.exists(a.before.customer.profilePhotoKey!)).toBe(true);
    expect((await env.ctx.db.selectFrom('activity').select('id').where('customerId', '=', a.id).execute()).length).toBeGreaterThan(1);
    const r0 = await api.get(`/v1/deletions/${a.id}`);
    expect(r0.body.redaction).toMatchObject({ ran: false, policyVersion: null, reason: 'automatic_personal_data_deletion_off' });
    expect((await api.get(`/v1/customers/${a.id}`)).status).toBe(404);

    // The job does nothing while the setting is off.
    const idle = await api.post('/v1/jobs/retention/run');
    expect(idle.status).toBe(200);
    expect(idle.body.result['redaction-backlog']).toMatchObject({ enabled: 0, redacted: 0 });
    expect((await rowsOf(a.id)).customer.redactedAt).toBeNull();

    // Turned on; the job runs a day later (fake clock).
    const on = await api.patch('/v1/settings', { automaticPersonalDataDeletion: true });
    env.clock.advance(DAY_MS);
    const run = await api.post('/v1/jobs/retention/run');
    expect(run.status).toBe(200);
    expect(run.body.result['redaction-backlog']).toMatchObject({ enabled: 1 });
    expect(run.body.result['redaction-backlog'].redacted).toBeGreaterThanOrEqual(2);

    const afterA = await rowsOf(a.id);
    const afterB = await rowsOf(b.id);
    for (const [entity, fields] of Object.entries(SPEC_TABLE)) {
      for (const [field, exp] of Object.entries(fields)) checkField(entity, field, exp, a.before, afterA, afterB);
    }
    expect(afterA.customer.redactedAt).toEqual(env.clock.now());
    expect(await env.ctx.blobs.exists(a.before.customer.profilePhotoKey!)).toBe(false);
    const act = await env.ctx.db.selectFrom('activity').selectAll().where('customerId', '=', a.id).execute();
    expect(act.map((x) => x.type)).toEqual(['customer.deleted']);
    expect(JSON.stringify(act)).not.toContain(a.before.customer.email!);

    const events = await env.ctx.db.selectFrom('auditEvents').selectAll().where('type', '=', 'customer.redacted')
      .where('subjectId', 'in', [a.id, b.id]).execute();
    expect(events).toHaveLength(2);
    expect(events[0]!.data).toEqual({ via: 'backlog', policyVersion: on.body.policyVersion });
    const receipt = await api.get(`/v1/deletions/${a.id}`);
    expect(receipt.body.redaction).toMatchObject({
      ran: true, via: 'backlog', policyVersion: on.body.policyVersion, redactedAt: env.clock.now().toISOString(),
    });
    expect((await api.get('/v1/audit-events/verify')).body.valid).toBe(true);

    // Idempotent: a second run finds nothing left.
    const again = await api.post('/v1/jobs/retention/run');
    expect(again.body.result['redaction-backlog'].redacted).toBe(0);
  });

  it('works in batches over many soft-deleted customers', async () => {
    const total = BACKLOG_BATCH * 2 + 7;
    await api.patch('/v1/settings', { automaticPersonalDataDeletion: false });
    await sql`INSERT INTO customers (first_name, email, metadata, created_at, updated_at, deleted_at)
      SELECT 'Bulk' || g, 'bulk' || g || '@example.com', jsonb_build_object('k', 'v' || g), now(), now(), now()
      FROM generate_series(1, ${total}) AS g`.execute(env.ctx.db);
    await api.patch('/v1/settings', { automaticPersonalDataDeletion: true });
    const run = await api.post('/v1/jobs/retention/run');
    expect(run.body.result['redaction-backlog']).toMatchObject({ redacted: total, batches: 3 });
    // The originals exactly (a digit follows the prefix): a name mask is 8 letters of an alphabet
    // that holds B, u, l and k, so 'Bulk%' alone matched a random mask in about 1.5 % of runs.
    const left = await sql<{ n: number }>`SELECT count(*)::int AS n FROM customers
      WHERE deleted_at IS NOT NULL AND (redacted_at IS NULL OR email ~ '^bulk[0-9]+@example[.]com$'
        OR first_name ~ '^Bulk[0-9]+$' OR metadata->>'k' ~ '^v[0-9]+$')`
      .execute(env.ctx.db);
    expect(left.rows[0]!.n).toBe(0);
    const audited = await sql<{ n: number }>`SELECT count(*)::int AS n FROM audit_events WHERE type = 'customer.redacted'`.execute(env.ctx.db);
    expect(audited.rows[0]!.n).toBeGreaterThanOrEqual(total);
    // A batch's events are chained in one insert: the chain still verifies.
    expect((await api.get('/v1/audit-events/verify')).body).toMatchObject({ valid: true });
  });
});

describe('files an older release left under the data directory', () => {
  it('are moved into the database at start when a row still points at them, removed otherwise (pending deletions, orphans); idempotent', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-legacy-'));
    const pgDb = TEST_DB === 'postgres' ? await createPgDatabase() : null;
    const config = loadConfig({
      LETHE_DATA_DIR: dataDir, LETHE_ADMIN_KEY: 'lethe_op_crash_test_key_0123456789abcdef', LOG_LEVEL: 'silent',
      LETHE_SCHEDULER: 'false', LETHE_DISPATCHER: 'false', ...(pgDb ? { DATABASE_URL: pgDb.url } : {}),
    });
    const log = pino({ level: 'silent' });
    const hex = () => crypto.randomBytes(16).toString('hex');
    const [keep, pending, orphan] = [`photos/${hex()}`, `photos/${hex()}`, `photos/${hex()}`];
    try {
      const first = await startRuntime(config, { log, withDefaultMetrics: false });
      const at = new Date();
      await first.ctx.db.insertInto('customers').values({ email: 'legacy@example.org', metadata: '{}', profilePhotoKey: keep,
        profilePhotoContentType: 'image/png', createdAt: at, updatedAt: at } as never).execute();
      // A committed DELETE whose file step never ran (the old after-commit removal).
      await first.ctx.db.insertInto('blobDeletions').values({ blobKey: pending, requestedAt: at }).execute();
      await first.close();
      for (const k of [keep, pending, orphan]) {
        fs.mkdirSync(path.join(dataDir, 'blobs', 'photos'), { recursive: true });
        fs.writeFileSync(path.join(dataDir, 'blobs', k), Buffer.concat([PNG, Buffer.from(k)]));
      }
      fs.writeFileSync(path.join(dataDir, 'blobs', 'photos', `${hex()}.tmp`), PNG);

      for (let i = 0; i < 2; i++) {
        const next = await startRuntime(config, { log, withDefaultMetrics: false });
        try {
          expect((await next.ctx.blobs.get(keep))?.equals(Buffer.concat([PNG, Buffer.from(keep)]))).toBe(true);
          expect(await next.ctx.blobs.exists(pending)).toBe(false);
          expect(await next.ctx.blobs.exists(orphan)).toBe(false);
          expect(await next.ctx.db.selectFrom('blobDeletions').selectAll().execute()).toEqual([]);
          expect(fs.existsSync(path.join(dataDir, 'blobs'))).toBe(false);
        } finally {
          await next.close();
        }
      }
    } finally {
      await pgDb?.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
