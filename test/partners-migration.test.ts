// Migration 0009 (partners) on a database written by release 1: confirmations given before it
// read as outcome `deleted`, the history lists them, and the new calls work on upgraded data.
import { describe, expect, it } from 'vitest';
import type { ReleaseFixture } from './helpers/release-fixture.ts';
import { useReleaseFixture } from './helpers/upgrade.ts';
import { client, type TestEnv } from './helpers/runtime.ts';

describe('migration 0009-partners on release 1 data', () => {
  let fx: ReleaseFixture;
  let env: TestEnv;
  useReleaseFixture((f, e) => { fx = f; env = e; });

  it('existing confirmations and confirmed cases read as outcome deleted; open cases have none', async () => {
    const rows = await env.ctx.db.selectFrom('deletionConfirmations').selectAll().execute();
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r.outcome).toBe('deleted');
    const cases = await env.ctx.db.selectFrom('deletionCases').selectAll().execute();
    for (const c of cases) expect(c.outcome).toBe(c.status === 'confirmed' ? 'deleted' : null);
    expect(cases.some((c) => c.status === 'confirmed')).toBe(true);
  });

  it('the history lists release 1\'s confirmation; the application key reaches its own application only', async () => {
    const m = fx.manifest;
    const op = client(env.app, m.operatorKey);
    const all = await op.get('/v1/data-deletions/confirmations');
    expect(all.status).toBe(200);
    expect(all.body.data.length).toBe((await env.ctx.db.selectFrom('deletionConfirmations').select('id').execute()).length);
    expect(all.body.data.every((c: { outcome: string }) => c.outcome === 'deleted')).toBe(true);
    expect(all.body.data.map((c: { subscriptionId: string }) => c.subscriptionId)).toContain(m.customers.deleted);

    const app = client(env.app, m.applicationKey);
    const own = await app.get('/v1/data-deletions/confirmations');
    expect(own.status).toBe(200);
    const mine = await app.get(`/v1/applications/${m.applications.a}`);
    const theirs = await app.get(`/v1/applications/${m.applications.b}`);
    // The release's application key is associated with application a only (scripts/make-release-fixture.ts).
    expect([mine.status, theirs.status]).toEqual([200, 403]);
  });

  it('a due case from release 1 is confirmed with no_data_held after the upgrade', async () => {
    const m = fx.manifest;
    const kase = await env.ctx.db.selectFrom('deletionCases').selectAll()
      .where('customerId', '=', m.customers.deletedUnconfirmed).where('applicationId', '=', m.applications.a).executeTakeFirst();
    expect(kase?.status).toBe('required');
    const r = await client(env.app, m.applicationKey).post('/v1/data-deletions/confirmations',
      { subscriptionId: m.customers.deletedUnconfirmed, applicationId: m.applications.a, outcome: 'no_data_held' });
    expect(r.status).toBe(200);
    expect(r.body.outcome).toBe('no_data_held');
    const after = await env.ctx.db.selectFrom('deletionCases').selectAll().where('id', '=', kase!.id).executeTakeFirstOrThrow();
    expect(after).toMatchObject({ status: 'confirmed', outcome: 'no_data_held' });
  });
});
