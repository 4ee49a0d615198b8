// Users upgrade: this checkout's server starts on a database written by the last landed release
// (test/fixtures/release-1, made by scripts/make-release-fixture.ts) and serves what it held.
// Each migration's own upgrade checks live beside its feature's tests and use the same fixture.
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS as migrations } from '../src/domains.ts';
import type { ReleaseFixture } from './helpers/release-fixture.ts';
import { useReleaseFixture } from './helpers/upgrade.ts';
import { client, type TestEnv } from './helpers/runtime.ts';

describe('upgrade from release 1', () => {
  let fx: ReleaseFixture;
  let env: TestEnv;
  useReleaseFixture((f, e) => { fx = f; env = e; });

  it('applies every migration of this checkout', async () => {
    const { sql } = await import('kysely');
    const r = await sql<{ name: string }>`SELECT name FROM lethe_migrations ORDER BY name`.execute(env.ctx.db);
    expect(r.rows.map((x) => x.name)).toEqual(Object.keys(migrations).sort());
  });

  it('serves the living customer, its photo and its records; the deleted stay deleted', async () => {
    const m = fx.manifest;
    const api = client(env.app, m.operatorKey);
    const living = await api.get(`/v1/customers/${m.customers.living}`);
    expect(living.status).toBe(200);
    expect(living.body.email).toBe(m.living.email);
    const photo = await env.app.inject({ method: 'GET', url: `/v1/customers/${m.customers.living}/profile-photo`,
      headers: { authorization: `Bearer ${m.operatorKey}` } });
    expect(photo.statusCode).toBe(200);
    expect(crypto.createHash('sha256').update(photo.rawPayload).digest('hex')).toBe(m.photoSha256);
    const list = await api.get(`/v1/customers?email=${encodeURIComponent(m.deletedEmails[0]!)}`);
    expect(list.body.data).toEqual([]);
    expect((await api.get(`/v1/customers/${m.customers.deleted}`)).status).toBe(404);
    const receipt = await api.get(`/v1/deletions/${m.customers.deleted}`);
    expect(receipt.status).toBe(200);
    expect(JSON.stringify(receipt.body)).not.toContain(m.deletedEmails[0]);
  });

  it('keeps the keys of release 1 working and the audit chain valid', async () => {
    const m = fx.manifest;
    const app = client(env.app, m.applicationKey);
    const cases = await app.get('/v1/data-deletions');
    expect(cases.status).toBe(200);
    expect(cases.body.data.map((c: { subscriptionId: string }) => c.subscriptionId)).toContain(m.customers.deleted);
    const verify = await client(env.app, m.operatorKey).get('/v1/audit-events/verify');
    expect(verify.status).toBe(200);
    expect(verify.body.valid).toBe(true);
    expect(verify.body.count).toBeGreaterThanOrEqual(m.auditEvents);
  });

  it('deletes release 1\'s living customer after the upgrade: the chain continues from release 1\'s end and verifies', async () => {
    const { sql } = await import('kysely');
    const m = fx.manifest;
    const api = client(env.app, m.operatorKey);
    const before = await sql<{ seq: string; hash: string }>`SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1`.execute(env.ctx.db);
    expect((await api.del(`/v1/customers/${m.customers.living}`)).status).toBe(204);
    expect((await api.get(`/v1/customers/${m.customers.living}`)).status).toBe(404);
    // The deletion's first event chains onto the last one written before it (migration 0016's lethe_audit_head).
    const next = await sql<{ seq: string; prev_hash: string }>`SELECT seq, prev_hash FROM audit_events WHERE seq > ${before.rows[0]!.seq}
      ORDER BY seq LIMIT 1`.execute(env.ctx.db.withoutPlugins());
    expect(Number(next.rows[0]!.seq)).toBe(Number(before.rows[0]!.seq) + 1);
    expect(next.rows[0]!.prev_hash).toBe(before.rows[0]!.hash);
    const receipt = await api.get(`/v1/deletions/${m.customers.living}`);
    expect(receipt.status).toBe(200);
    const verify = await api.get('/v1/audit-events/verify');
    expect(verify.body.valid).toBe(true);
    // Its customer.deleted entry was written masked: the e-mail is in no activity row.
    const entries = await sql<{ details: unknown }>`SELECT details FROM activity WHERE customer_id = ${m.customers.living}`.execute(env.ctx.db);
    expect(entries.rows).toHaveLength(1);
    expect(JSON.stringify(entries.rows[0]!.details)).not.toContain(m.living.email);
  });
});
