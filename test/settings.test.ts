import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { createApplication, createAppKey } from './helpers/fixtures.ts';
import { POLICY_FIELDS } from '../src/erasure/redaction-policy.ts';

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
});
afterAll(async () => env?.close());

const auditOf = async (type: string) =>
  (await env.ctx.db.selectFrom('auditEvents').selectAll().where('type', '=', type).orderBy('seq').execute());

describe('GET /v1/settings', () => {
  it('returns every SPEC setting with its default and the full effective redaction policy', async () => {
    const r = await api.get('/v1/settings');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      automaticPersonalDataDeletion: true, gracePeriodDays: 90, notificationTime: '00:00', notificationTimeZone: 'UTC',
      backupRetentionDays: 30, overdueAfterDays: 30, redactionPolicyOverrides: {}, policyVersion: 1,
    });
    const policy = r.body.redactionPolicy as Record<string, string>;
    expect(Object.keys(policy).sort()).toEqual(POLICY_FIELDS.map((f) => f.key).sort());
    expect(policy).toMatchObject({
      'customer.email': 'mask', 'customer.organization': 'nullify', 'customer.profilePhoto': 'delete',
      'address.phone': 'mask', 'address.postalCode': 'nullify', 'payment_method.last4': 'mask',
      'subscription.giftRecipientEmail': 'mask', 'social_identity.externalId': 'mask', 'address.city': 'keep',
    });
  });

  it('is operator-only', async () => {
    const app = await createApplication(api);
    const appKey = await createAppKey(api, [app.id]);
    expect((await client(env.app, appKey).get('/v1/settings')).status).toBe(403);
    expect((await client(env.app, appKey).patch('/v1/settings', { gracePeriodDays: 1 })).status).toBe(403);
    expect((await client(env.app, null).get('/v1/settings')).status).toBe(401);
  });
});

describe('PATCH /v1/settings', () => {
  it('changes scalar settings, canonicalizes the zone, and audits the change without a policy bump', async () => {
    const r = await api.patch('/v1/settings', {
      gracePeriodDays: 0, notificationTime: '23:59', notificationTimeZone: 'Europe/Berlin', backupRetentionDays: 7,
      overdueAfterDays: 14, automaticPersonalDataDeletion: false,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({
      gracePeriodDays: 0, notificationTime: '23:59', notificationTimeZone: 'Europe/Berlin', backupRetentionDays: 7,
      overdueAfterDays: 14, automaticPersonalDataDeletion: false, policyVersion: 1,
    });
    expect((await api.get('/v1/settings')).body).toMatchObject({ gracePeriodDays: 0, notificationTimeZone: 'Europe/Berlin' });
    const events = await auditOf('settings.updated');
    expect(events).toHaveLength(1);
    expect(events[0]!.data).toEqual({ changed: {
      gracePeriodDays: 0, notificationTime: '23:59', notificationTimeZone: 'Europe/Berlin', backupRetentionDays: 7,
      overdueAfterDays: 14, automaticPersonalDataDeletion: false,
    } });
    // Lower-case "utc" is accepted as the IANA zone UTC.
    expect((await api.patch('/v1/settings', { notificationTimeZone: 'utc', automaticPersonalDataDeletion: true })).body)
      .toMatchObject({ notificationTimeZone: 'UTC', automaticPersonalDataDeletion: true });
    // A patch that changes nothing writes no audit event.
    await api.patch('/v1/settings', { notificationTimeZone: 'UTC' });
    expect(await auditOf('settings.updated')).toHaveLength(2);
  });

  const bad: Array<[string, unknown, string]> = [
    ['unknown key', { colour: 'red' }, 'colour'],
    ['read-only key', { policyVersion: 5 }, 'policyVersion'],
    ['empty patch', {}, 'body'],
    ['negative grace period', { gracePeriodDays: -1 }, 'gracePeriodDays'],
    ['fractional days', { backupRetentionDays: 1.5 }, 'backupRetentionDays'],
    ['negative backup retention', { backupRetentionDays: -3 }, 'backupRetentionDays'],
    ['negative overdue', { overdueAfterDays: -1 }, 'overdueAfterDays'],
    ['days as string', { gracePeriodDays: '5' }, 'gracePeriodDays'],
    ['bad time 24:00', { notificationTime: '24:00' }, 'notificationTime'],
    ['bad time 7:00', { notificationTime: '7:00' }, 'notificationTime'],
    ['bad time text', { notificationTime: 'noon' }, 'notificationTime'],
    ['unknown zone', { notificationTimeZone: 'Mars/Olympus_Mons' }, 'notificationTimeZone'],
    ['offset instead of zone', { notificationTimeZone: '+02:00' }, 'notificationTimeZone'],
    ['empty zone', { notificationTimeZone: '' }, 'notificationTimeZone'],
    ['boolean as string', { automaticPersonalDataDeletion: 'yes' }, 'automaticPersonalDataDeletion'],
    ['unknown policy field', { redactionPolicy: { 'customer.shoeSize': 'mask' } }, 'customer.shoeSize'],
    ['unknown action', { redactionPolicy: { 'customer.email': 'shred' } }, 'customer.email'],
    ['delete on a non-file field', { redactionPolicy: { 'customer.email': 'delete' } }, 'customer.email'],
    ['mask on the photo', { redactionPolicy: { 'customer.profilePhoto': 'mask' } }, 'customer.profilePhoto'],
    ['nullify on a NOT NULL field', { redactionPolicy: { 'social_identity.externalId': 'nullify' } }, 'social_identity.externalId'],
    ['hash is not a policy action', { redactionPolicy: { 'customer.tin': 'hash' } }, 'customer.tin'],
    ['policy not an object', { redactionPolicy: 'mask' }, 'redactionPolicy'],
    ['keep on an identifying field without confirmation', { redactionPolicy: { 'customer.email': 'keep' } }, 'customer.email'],
    ['keep identifying with confirmation false',
      { redactionPolicy: { 'customer.lastName': 'keep' }, confirmKeepIdentifying: false }, 'customer.lastName'],
  ];
  it.each(bad)('400 validation_failed naming the field: %s', async (_name, body, field) => {
    const before = (await api.get('/v1/settings')).body;
    const r = await api.patch('/v1/settings', body);
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.code).toBe('validation_failed');
    expect(r.headers['content-type']).toContain('application/problem+json');
    expect(r.body.detail).toContain(field);
    expect((await api.get('/v1/settings')).body).toEqual(before);
  });

  it('400 for a malformed JSON body', async () => {
    const r = await api.call('PATCH', '/v1/settings', '{"gracePeriodDays": ', { 'content-type': 'application/json' });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('validation_failed');
  });
});

describe('redaction policy overrides', () => {
  it('overrides a field, bumps policyVersion, audits field names and actions only', async () => {
    const v0 = (await api.get('/v1/settings')).body.policyVersion as number;
    const r = await api.patch('/v1/settings', { redactionPolicy: { 'customer.organization': 'mask', 'address.city': 'nullify' } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.policyVersion).toBe(v0 + 1);
    expect(r.body.redactionPolicy['customer.organization']).toBe('mask');
    expect(r.body.redactionPolicy['address.city']).toBe('nullify');
    expect(r.body.redactionPolicy['customer.email']).toBe('mask');
    expect(r.body.redactionPolicyOverrides).toEqual({ 'customer.organization': 'mask', 'address.city': 'nullify' });

    const events = await auditOf('redaction_policy.updated');
    expect(events.at(-1)!.data).toEqual({
      policyVersion: v0 + 1, changes: { 'customer.organization': 'mask', 'address.city': 'nullify' }, keptIdentifying: [],
    });
    expect(events.at(-1)!.actorKeyId).not.toBeNull();

    // The same overrides again change nothing: no bump, no new event.
    const same = await api.patch('/v1/settings', { redactionPolicy: { 'customer.organization': 'mask' } });
    expect(same.body.policyVersion).toBe(v0 + 1);
    expect(await auditOf('redaction_policy.updated')).toHaveLength(events.length);

    // null (or the default action) restores the default.
    const reset = await api.patch('/v1/settings', { redactionPolicy: { 'customer.organization': null, 'address.city': 'keep' } });
    expect(reset.body.policyVersion).toBe(v0 + 2);
    expect(reset.body.redactionPolicyOverrides).toEqual({});
    expect(reset.body.redactionPolicy['customer.organization']).toBe('nullify');
    expect((await auditOf('redaction_policy.updated')).at(-1)!.data).toMatchObject({
      changes: { 'customer.organization': 'nullify', 'address.city': 'keep' },
    });
  });

  it('keeping an identifying field needs confirmKeepIdentifying and is recorded as such in the audit log', async () => {
    const v0 = (await api.get('/v1/settings')).body.policyVersion as number;
    const refused = await api.patch('/v1/settings', { redactionPolicy: { 'customer.email': 'keep', 'customer.organization': 'keep' } });
    expect(refused.status).toBe(400);
    expect(refused.body.detail).toContain('customer.email');
    expect(refused.body.detail).not.toContain('customer.organization'); // not identifying: no confirmation needed
    expect((await api.get('/v1/settings')).body.policyVersion).toBe(v0);

    const ok = await api.patch('/v1/settings', {
      redactionPolicy: { 'customer.email': 'keep', 'customer.organization': 'keep' }, confirmKeepIdentifying: true,
    });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body.policyVersion).toBe(v0 + 1);
    expect(ok.body.redactionPolicy['customer.email']).toBe('keep');
    const last = (await auditOf('redaction_policy.updated')).at(-1)!;
    expect(last.data).toEqual({
      policyVersion: v0 + 1, changes: { 'customer.email': 'keep', 'customer.organization': 'keep' },
      keptIdentifying: ['customer.email'],
    });

    // Re-sending an existing keep (e.g. a GET-modify-PATCH round trip) needs no new confirmation.
    const again = await api.patch('/v1/settings', { redactionPolicy: ok.body.redactionPolicy });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.body.policyVersion).toBe(v0 + 1);

    // Non-identifying keep without confirmation is fine.
    const restore = await api.patch('/v1/settings', { redactionPolicy: { 'customer.email': null, 'customer.organization': null } });
    expect(restore.body.redactionPolicyOverrides).toEqual({});
    const keepOrg = await api.patch('/v1/settings', { redactionPolicy: { 'customer.organization': 'keep' } });
    expect(keepOrg.status).toBe(200);
    await api.patch('/v1/settings', { redactionPolicy: { 'customer.organization': null } });

    // The audit chain stays valid across all of it.
    expect((await api.get('/v1/audit-events/verify')).body.valid).toBe(true);
  });

  it('the photo can only be deleted or kept', async () => {
    const r = await api.patch('/v1/settings', { redactionPolicy: { 'customer.profilePhoto': 'keep' }, confirmKeepIdentifying: true });
    expect(r.status).toBe(200);
    expect(r.body.redactionPolicy['customer.profilePhoto']).toBe('keep');
    const back = await api.patch('/v1/settings', { redactionPolicy: { 'customer.profilePhoto': 'delete' } });
    expect(back.body.redactionPolicyOverrides).toEqual({});
  });

  it('a policy change and a settings change in one patch write both audit events atomically', async () => {
    const before = await auditOf('settings.updated');
    const bad = await api.patch('/v1/settings', { gracePeriodDays: 10, redactionPolicy: { 'customer.nope': 'mask' } });
    expect(bad.status).toBe(400);
    expect((await api.get('/v1/settings')).body.gracePeriodDays).not.toBe(10);
    expect(await auditOf('settings.updated')).toHaveLength(before.length);
    const ok = await api.patch('/v1/settings', { gracePeriodDays: 10, redactionPolicy: { 'address.company': 'nullify' } });
    expect(ok.status).toBe(200);
    expect(await auditOf('settings.updated')).toHaveLength(before.length + 1);
    await api.patch('/v1/settings', { redactionPolicy: { 'address.company': null } });
  });
});
