// Migration 0008 (operator and compliance) on a database written by release 1.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ReleaseFixture } from './helpers/release-fixture.ts';
import { useReleaseFixture } from './helpers/upgrade.ts';
import { client, type TestEnv } from './helpers/runtime.ts';
import { restoreDatabaseBackup } from '../src/backups/restore.ts';

describe('upgrade from release 1: key lifecycle, externalId, record erasure, settings', () => {
  let fx: ReleaseFixture;
  let env: TestEnv;
  useReleaseFixture((f, e) => { fx = f; env = e; });

  it('release 1 keys are listed (no label, no expiry), record their use, and can be revoked', async () => {
    const m = fx.manifest;
    const op = client(env.app, m.operatorKey);
    const list = await op.get('/v1/api-keys');
    expect(list.status).toBe(200);
    expect(list.body.data.length).toBeGreaterThanOrEqual(2);
    for (const k of list.body.data) expect(k).toMatchObject({ label: null, expiresAt: null, revokedAt: null });
    const appKey = list.body.data.find((k: { kind: string }) => k.kind === 'application');
    expect(appKey.applicationIds.length).toBeGreaterThan(0);
    const app = client(env.app, m.applicationKey);
    expect((await app.get('/v1/data-deletions')).status).toBe(200);
    expect((await op.get(`/v1/api-keys/${appKey.id}`)).body.lastUsedAt).toBe('2026-11-27T10:00:00.000Z');
    expect((await op.del(`/v1/api-keys/${appKey.id}`)).status).toBe(204);
    expect((await app.get('/v1/data-deletions')).status).toBe(401);
  });

  it('settings and receipts of release 1 read with the new fields; customers gain externalId', async () => {
    const m = fx.manifest;
    const op = client(env.app, m.operatorKey);
    expect((await op.get('/v1/settings')).body.deleteCustomerWhenGraceEnds).toBe(false);
    expect((await op.get(`/v1/deletions/${m.customers.deleted}`)).body.deletedBy).toBeNull();
    const living = await op.get(`/v1/customers/${m.customers.living}`);
    expect(living.body.externalId).toBeNull();
    expect((await op.patch(`/v1/customers/${m.customers.living}`, { externalId: 'crm-42' })).status).toBe(200);
    expect((await op.get('/v1/customers?externalId=crm-42')).body.data.map((c: { id: string }) => c.id)).toEqual([m.customers.living]);
  });

  it('a record removed after the release-1 backup is removed again when that backup is restored', async () => {
    const m = fx.manifest;
    const op = client(env.app, m.operatorKey);
    const cards = await op.get(`/v1/customers/${m.customers.living}/payment-methods`);
    const addresses = await op.get(`/v1/customers/${m.customers.living}/addresses`);
    const [path1, rec] = cards.body.data[0] ? ['payment-methods', cards.body.data[0]] : ['addresses', addresses.body.data[0]];
    expect(rec, 'the fixture holds a card or an address of the living customer').toBeDefined();
    env.clock.advance(60_000);
    expect((await op.del(`/v1/customers/${m.customers.living}/${path1}/${rec.id}`)).status).toBe(204);
    expect((await op.get(`/v1/customers/${m.customers.living}/${path1}/${rec.id}`)).status).toBe(404);
    const r = await restoreDatabaseBackup(env.ctx, env.services.registry, path.join(fx.backupDir, m.databaseBackup));
    expect(r.replay.recordsReplayed).toBe(1);
    expect((await op.get(`/v1/customers/${m.customers.living}/${path1}/${rec.id}`)).status).toBe(404);
    expect((await op.get(`/v1/customers/${m.customers.living}`)).status).toBe(200);
    const verify = await op.get('/v1/audit-events/verify');
    expect(verify.body.valid).toBe(true);
  });
});
