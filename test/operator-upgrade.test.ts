// Migration 0012 (receipt-signing keys, delivery response excerpts) on a database written by release 1.
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ReleaseFixture } from './helpers/release-fixture.ts';
import { useReleaseFixture } from './helpers/upgrade.ts';
import { client, type TestEnv } from './helpers/runtime.ts';

describe('migration 0012 on a release-1 database', () => {
  let fx: ReleaseFixture;
  let env: TestEnv;
  useReleaseFixture((f, e) => { fx = f; env = e; });

  it('signs the receipts of deletions made by release 1; they verify against the published key', async () => {
    const m = fx.manifest;
    const api = client(env.app, m.operatorKey);
    const signed = await api.get(`/v1/deletions/${m.customers.deleted}/signed`);
    expect(signed.status).toBe(200);
    const keys = await client(env.app, null).get('/v1/receipt-keys');
    const key = keys.body.keys.find((k: { keyId: string }) => k.keyId === signed.body.keyId);
    const pub = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key.publicKey }, format: 'jwk' });
    expect(crypto.verify(null, Buffer.from(signed.body.receipt), pub, Buffer.from(signed.body.signature, 'base64url'))).toBe(true);
    expect(JSON.parse(signed.body.receipt)).toEqual((await api.get(`/v1/deletions/${m.customers.deleted}`)).body);
    const listed = await api.get('/v1/deletions');
    expect(listed.body.data.map((r: { customerId: string }) => r.customerId)).toEqual(expect.arrayContaining([m.customers.deleted, m.customers.deletedUnconfirmed]));
  });

  it('keeps release 1 delivery rows (no excerpt), shows their health, and stats cover the old events', async () => {
    const m = fx.manifest;
    const api = client(env.app, m.operatorKey);
    const rows = await env.ctx.db.selectFrom('webhookDeliveries').select(['id', 'responseExcerpt']).execute();
    expect(rows.every((r) => r.responseExcerpt === null)).toBe(true);
    const health = await api.get(`/v1/applications/${m.applications.a}/delivery-health`);
    expect(health.status).toBe(200);
    const stats = await api.get('/v1/stats?from=2026-01-01&to=2026-12-31&zone=UTC');
    expect(stats.status).toBe(200);
    expect(stats.body.days.reduce((a: number, d: { deletions: number }) => a + d.deletions, 0)).toBeGreaterThanOrEqual(2);
    expect((await api.get('/v1/audit-events/verify')).body.valid).toBe(true);
  });
});
