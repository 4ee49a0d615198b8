import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { createApplication, createCustomer, customerBody, populate } from './helpers/fixtures.ts';

let env: TestEnv;
let api: Client;
const personal: string[] = [];

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
  // A history of audited changes: applications, keys, deletions.
  const app = await createApplication(api);
  await api.post('/v1/api-keys', { kind: 'application', applicationIds: [app.id] });
  for (let i = 0; i < 3; i++) {
    const body = customerBody();
    personal.push(body.email, body.firstName, body.lastName, body.tin);
    const c = await createCustomer(api, body);
    await populate(api, c.id, [app.id]);
    env.clock.advance(60_000);
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
  }
});
afterAll(async () => env?.close());

const verify = async () => (await api.get('/v1/audit-events/verify')).body as { valid: boolean; count: number; firstInvalidSeq: number | null };
const count = async () => Number((await env.ctx.db.selectFrom('auditEvents').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

describe('the audit chain', () => {
  it('verifies, counting every row', async () => {
    const v = await verify();
    expect(v).toEqual({ valid: true, count: await count(), firstInvalidSeq: null });
    expect(v.count).toBeGreaterThanOrEqual(5);
  });

  it('each row carries the previous row\'s hash', async () => {
    const rows = (await api.get('/v1/audit-events?limit=500')).body.data as Array<{ seq: number; prevHash: string; hash: string }>;
    expect(rows[0]!.prevHash).toBe('0'.repeat(64));
    for (let i = 1; i < rows.length; i++) {
      expect(rows[i]!.seq).toBe(rows[i - 1]!.seq + 1);
      expect(rows[i]!.prevHash).toBe(rows[i - 1]!.hash);
    }
  });

  it('holds ids and counts only: no personal value of the deleted customers', async () => {
    const all = await env.ctx.db.selectFrom('auditEvents').selectAll().execute();
    const text = JSON.stringify(all);
    for (const value of personal) expect(text).not.toContain(value);
    const listed = (await api.get('/v1/audit-events?limit=500')).raw;
    for (const value of personal) expect(listed).not.toContain(value);
  });

  it('a refused change writes no audit row (same transaction)', async () => {
    const before = await count();
    const held = await createCustomer(api, { legalHold: true });
    expect((await api.del(`/v1/customers/${held.id}`)).status).toBe(409);
    expect(await count()).toBe(before);
  });

  it('concurrent appends never fork the chain', async () => {
    await Promise.all(Array.from({ length: 8 }, (_, i) => api.post('/v1/applications', { name: `concurrent-${i}` })));
    const v = await verify();
    expect(v.valid).toBe(true);
    expect(v.count).toBe(await count());
  });

  it('altering a row in the database makes verify answer valid: false at that row', async () => {
    const target = await env.ctx.db.selectFrom('auditEvents').selectAll().where('type', '=', 'customer.deleted')
      .orderBy('seq').limit(1).executeTakeFirstOrThrow();
    const original = JSON.stringify(target.data);
    const altered = { ...(target.data as Record<string, unknown>), preservedTransactions: 0 };
    await sql`UPDATE audit_events SET data = ${JSON.stringify(altered)}::jsonb WHERE seq = ${target.seq}`.execute(env.ctx.db);
    try {
      const v = await verify();
      expect(v.valid).toBe(false);
      expect(v.firstInvalidSeq).toBe(Number(target.seq));
    } finally {
      await sql`UPDATE audit_events SET data = ${original}::jsonb WHERE seq = ${target.seq}`.execute(env.ctx.db);
    }
    expect((await verify()).valid).toBe(true);
  });

  it('changing who or when, or recomputing a row\'s own hash, is caught', async () => {
    const target = await env.ctx.db.selectFrom('auditEvents').selectAll().orderBy('seq').offset(2).limit(1).executeTakeFirstOrThrow();
    const restore = () => sql`UPDATE audit_events SET actor_key_id = ${target.actorKeyId}, created_at = ${target.createdAt}, hash = ${target.hash}
      WHERE seq = ${target.seq}`.execute(env.ctx.db);
    for (const change of [
      sql`UPDATE audit_events SET actor_key_id = NULL WHERE seq = ${target.seq}`,
      sql`UPDATE audit_events SET created_at = created_at + interval '1 second' WHERE seq = ${target.seq}`,
      // A forger who rewrites the hash of the row breaks the link to the next row instead.
      sql`UPDATE audit_events SET hash = ${'f'.repeat(64)} WHERE seq = ${target.seq}`,
    ]) {
      await change.execute(env.ctx.db);
      try {
        expect((await verify()).valid).toBe(false);
      } finally {
        await restore();
      }
    }
    expect((await verify()).valid).toBe(true);
  });

  it('removing a row is caught', async () => {
    const target = await env.ctx.db.selectFrom('auditEvents').selectAll().orderBy('seq').offset(1).limit(1).executeTakeFirstOrThrow();
    await sql`DELETE FROM audit_events WHERE seq = ${target.seq}`.execute(env.ctx.db);
    try {
      const v = await verify();
      expect(v.valid).toBe(false);
      expect(v.firstInvalidSeq).toBe(Number(target.seq) + 1);
    } finally {
      await env.ctx.db.insertInto('auditEvents').values({ ...target, data: JSON.stringify(target.data) } as never).execute();
    }
    expect((await verify()).valid).toBe(true);
  });

  it('filters by subject and type; the deletion event names the actor key', async () => {
    const c = await createCustomer(api);
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
    const r = await api.get(`/v1/audit-events?subjectId=${c.id}&type=customer.deleted`);
    expect(r.body.data).toHaveLength(1);
    // The bootstrapped admin key made the call (the only key nobody issued; keys created at the same
    // fake-clock instant tie on createdAt, so that order does not name it).
    const key = await env.ctx.db.selectFrom('apiKeys').select('id').where('createdByKeyId', 'is', null).where('kind', '=', 'operator')
      .executeTakeFirstOrThrow();
    expect(r.body.data[0]).toMatchObject({ subjectType: 'customer', subjectId: c.id, actorKeyId: key.id });
    expect(r.body.data[0].data.counts).toMatchObject({ customer: 1 });
    expect((await api.get('/v1/audit-events?type=no.such.type')).body.data).toEqual([]);
  });
});
