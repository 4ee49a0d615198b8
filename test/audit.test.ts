import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { sql } from 'kysely';
import { appendAudit, hashEvent } from '../src/audit/audit.repo.ts';
import { CHECKPOINT_COOL_DOWN_MS, checkpointPath } from '../src/audit/checkpoints.ts';
import { createDatabaseBackup } from '../src/backups/database-backup.ts';
import { restoreDatabaseBackup } from '../src/backups/restore.ts';
import { client, createTestEnv, TEST_DB, type Client, type TestEnv } from './helpers/runtime.ts';
import { someoneWaitsOnAdvisoryLock } from './helpers/lock-waits.ts';
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

const verify = async () => (await api.get('/v1/audit-events/verify')).body as {
  valid: boolean; count: number; firstInvalidSeq: number | null; checkpointSeq: number | null;
  problems: Array<{ kind: string; seq: number | null; customerId: string | null }>; restores: Array<Record<string, unknown>>;
};
/** An attacker with database access: the append-only trigger switched off around `fn`. */
async function asAttacker<T>(fn: () => Promise<T>): Promise<T> {
  await sql`ALTER TABLE audit_events DISABLE TRIGGER USER`.execute(env.ctx.db);
  try { return await fn(); } finally { await sql`ALTER TABLE audit_events ENABLE TRIGGER USER`.execute(env.ctx.db); }
}
const count = async () => Number((await env.ctx.db.selectFrom('auditEvents').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

describe('the audit chain', () => {
  it('verifies, counting every row', async () => {
    const v = await verify();
    expect(v).toMatchObject({ valid: true, count: await count(), firstInvalidSeq: null, problems: [] });
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

  it.skipIf(TEST_DB !== 'postgres')('an append that waited for the chain lock chains onto the end its holder committed (PostgreSQL)', async () => {
    // lethe_audit_head (migration 0016) takes the lock and reads the end in one call: the read must
    // see what the previous holder committed while this one waited (a stale read forks the chain).
    const db = env.ctx.db;
    const event = (n: number) => ({ type: 'test.appended', actorKeyId: null, subjectType: null, subjectId: null, at: new Date(), data: { n } });
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    let firstAppended!: () => void;
    const appended = new Promise<void>((r) => { firstAppended = r; });
    const first = db.transaction().execute(async (trx) => {
      const e = await appendAudit(trx, event(1));
      firstAppended();
      await held; // the lock is held, the event not committed
      return e;
    });
    await appended;
    const second = db.transaction().execute((trx) => appendAudit(trx, event(2)));
    // The second is waiting for the lock (its backend shows it), then the first commits.
    const waited = await someoneWaitsOnAdvisoryLock(db);
    release();
    expect(waited, 'the second append waited for the chain lock').toBe(true);
    const [a, b] = await Promise.all([first, second]);
    expect(Number(b.seq)).toBe(Number(a.seq) + 1);
    expect(b.prevHash).toBe(a.hash);
    expect((await verify()).valid).toBe(true);
  });

  it('altering a row in the database makes verify answer valid: false at that row', async () => {
    const target = await env.ctx.db.selectFrom('auditEvents').selectAll().where('type', '=', 'customer.deleted')
      .orderBy('seq').limit(1).executeTakeFirstOrThrow();
    const original = JSON.stringify(target.data);
    const altered = { ...(target.data as Record<string, unknown>), preservedTransactions: 0 };
    await asAttacker(() => sql`UPDATE audit_events SET data = ${JSON.stringify(altered)}::jsonb WHERE seq = ${target.seq}`.execute(env.ctx.db));
    try {
      const v = await verify();
      expect(v.valid).toBe(false);
      expect(v.firstInvalidSeq).toBe(Number(target.seq));
    } finally {
      await asAttacker(() => sql`UPDATE audit_events SET data = ${original}::jsonb WHERE seq = ${target.seq}`.execute(env.ctx.db));
    }
    expect((await verify()).valid).toBe(true);
  });

  it('changing who or when, or recomputing a row\'s own hash, is caught', async () => {
    const target = await env.ctx.db.selectFrom('auditEvents').selectAll().orderBy('seq').offset(2).limit(1).executeTakeFirstOrThrow();
    const restore = () => asAttacker(() => sql`UPDATE audit_events SET actor_key_id = ${target.actorKeyId}, created_at = ${target.createdAt}, hash = ${target.hash}
      WHERE seq = ${target.seq}`.execute(env.ctx.db));
    for (const change of [
      sql`UPDATE audit_events SET actor_key_id = NULL WHERE seq = ${target.seq}`,
      sql`UPDATE audit_events SET created_at = created_at + interval '1 second' WHERE seq = ${target.seq}`,
      // A forger who rewrites the hash of the row breaks the link to the next row instead.
      sql`UPDATE audit_events SET hash = ${'f'.repeat(64)} WHERE seq = ${target.seq}`,
    ]) {
      await asAttacker(() => change.execute(env.ctx.db));
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
    await asAttacker(() => sql`DELETE FROM audit_events WHERE seq = ${target.seq}`.execute(env.ctx.db));
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

describe('tamper evidence (issue 17)', () => {
  const last = async () => env.ctx.db.selectFrom('auditEvents').selectAll().orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();

  it('the table refuses UPDATE, DELETE and TRUNCATE', async () => {
    const row = await last();
    await expect(sql`UPDATE audit_events SET type = 'x' WHERE seq = ${row.seq}`.execute(env.ctx.db)).rejects.toThrow(/append-only/);
    await expect(sql`DELETE FROM audit_events WHERE seq = ${row.seq}`.execute(env.ctx.db)).rejects.toThrow(/append-only/);
    await expect(sql`TRUNCATE audit_events`.execute(env.ctx.db)).rejects.toThrow(/append-only/);
    expect((await last()).type).toBe(row.type);
  });

  it('deleting the last events (DELETE … WHERE seq > N) is reported as truncation, not valid', async () => {
    await createCustomer(api); // a write request: the head is checkpointed after it (within the cool-down)
    await new Promise((r) => setTimeout(r, CHECKPOINT_COOL_DOWN_MS + 100));
    const v0 = await verify();
    expect(v0.valid).toBe(true);
    const head = v0.count;
    expect(v0.checkpointSeq).toBe(head);
    const removed = await env.ctx.db.selectFrom('auditEvents').selectAll().where('seq', '>', head - 3).orderBy('seq').execute();
    await asAttacker(() => sql`DELETE FROM audit_events WHERE seq > ${head - 3}`.execute(env.ctx.db));
    try {
      const v = await verify();
      expect(v.valid).toBe(false);
      expect(v.problems).toContainEqual(expect.objectContaining({ kind: 'truncated', seq: head }));
      expect(v.restores).toEqual([]);
    } finally {
      for (const r of removed) await env.ctx.db.insertInto('auditEvents').values({ ...r, data: JSON.stringify(r.data) } as never).execute();
    }
    expect((await verify()).valid).toBe(true);
  });

  it('a rewritten event whose hashes are recomputed with the unkeyed function (release 1\'s) is caught', async () => {
    const rows = await env.ctx.db.selectFrom('auditEvents').selectAll().orderBy('seq').execute();
    const target = rows.findIndex((r) => r.actorKeyId !== null);
    const forged = rows.map((r) => ({ ...r, seq: Number(r.seq), data: r.data as Record<string, unknown> }));
    forged[target]!.actorKeyId = null;
    for (let i = target; i < forged.length; i++) {
      if (i > 0) forged[i]!.prevHash = forged[i - 1]!.hash;
      forged[i]!.hash = hashEvent(forged[i]!, null);
    }
    await asAttacker(async () => {
      for (const f of forged.slice(target)) {
        await sql`UPDATE audit_events SET actor_key_id = ${f.actorKeyId}, prev_hash = ${f.prevHash}, hash = ${f.hash} WHERE seq = ${f.seq}`.execute(env.ctx.db);
      }
    });
    try {
      const v = await verify();
      expect(v.valid).toBe(false);
      expect(v.firstInvalidSeq).toBe(forged[target]!.seq);
      // With a guessed key too (the key is derived from the master key, never stored in the database).
      expect(v.problems.map((p) => p.kind)).toContain('chain_broken');
    } finally {
      await asAttacker(async () => {
        for (const r of rows.slice(target)) {
          await sql`UPDATE audit_events SET actor_key_id = ${r.actorKeyId}, prev_hash = ${r.prevHash}, hash = ${r.hash} WHERE seq = ${r.seq}`.execute(env.ctx.db);
        }
      });
    }
    expect((await verify()).valid).toBe(true);
  });

  it('a receipt whose audit event is missing or different is reported', async () => {
    const receipt = await env.ctx.db.selectFrom('deletions').selectAll().limit(1).executeTakeFirstOrThrow();
    await env.ctx.db.updateTable('deletions').set({ auditHash: 'f'.repeat(64) }).where('customerId', '=', receipt.customerId).execute();
    let v = await verify();
    expect(v.valid).toBe(false);
    expect(v.problems).toContainEqual(expect.objectContaining({ kind: 'receipt_mismatch', customerId: receipt.customerId }));
    await env.ctx.db.updateTable('deletions').set({ auditHash: receipt.auditHash, auditEventId: '00000000-0000-4000-8000-000000000000' })
      .where('customerId', '=', receipt.customerId).execute();
    v = await verify();
    expect(v.problems).toContainEqual(expect.objectContaining({ kind: 'receipt_event_missing', customerId: receipt.customerId }));
    await env.ctx.db.updateTable('deletions').set({ auditEventId: receipt.auditEventId }).where('customerId', '=', receipt.customerId).execute();
    expect((await verify()).valid).toBe(true);
  });

  it('checkpoints live outside the database, signed: an edited line is reported', async () => {
    const file = checkpointPath(env.config);
    const text = fs.readFileSync(file, 'utf8');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const lines = text.trim().split('\n');
    const edited = JSON.parse(lines[lines.length - 1]!) as { seq: number };
    edited.seq -= 1;
    fs.appendFileSync(file, `${JSON.stringify(edited)}\n`);
    try {
      const v = await verify();
      expect(v.problems).toContainEqual(expect.objectContaining({ kind: 'checkpoint_invalid' }));
    } finally {
      fs.writeFileSync(file, text);
    }
    expect((await verify()).valid).toBe(true);
  });

  it('a documented restore is a recorded fork: the events it drops are not truncation', async () => {
    const backup = await createDatabaseBackup(env.ctx);
    for (let i = 0; i < 3; i++) await createApplication(api); // audited: three events the restore drops
    const before = await verify();
    expect(before.valid).toBe(true);
    const result = await restoreDatabaseBackup(env.ctx, env.services.registry, backup.path);
    expect(result.header.id).toBe(backup.header.id);
    const v = await verify();
    expect(v.valid, JSON.stringify(v.problems)).toBe(true);
    expect(v.restores).toHaveLength(1);
    expect(v.restores[0]).toMatchObject({ backupId: backup.header.id, replacedSeq: before.count });
    expect(Number(v.restores[0]!.eventsLost)).toBeGreaterThanOrEqual(3);
    // After the restore, a truncation of the new chain is still caught.
    await createCustomer(api);
    const headNow = (await verify()).count;
    const lastRow = await last();
    await asAttacker(() => sql`DELETE FROM audit_events WHERE seq = ${headNow}`.execute(env.ctx.db));
    try {
      expect((await verify()).problems).toContainEqual(expect.objectContaining({ kind: 'truncated' }));
    } finally {
      await env.ctx.db.insertInto('auditEvents').values({ ...lastRow, data: JSON.stringify(lastRow.data) } as never).execute();
    }
  });
});

describe('checkpoints under load', () => {
  const headLines = () => fs.readFileSync(checkpointPath(env.config), 'utf8').trim().split('\n')
    .map((l) => JSON.parse(l) as { kind: string; seq: number }).filter((l) => l.kind === 'head');

  it(`write requests in a row share checkpoints (one per ${CHECKPOINT_COOL_DOWN_MS} ms at most), and the last one anchors the head`, async () => {
    const before = headLines().length;
    const started = Date.now();
    for (let i = 0; i < 30; i++) await createApplication(api);
    const elapsed = Date.now() - started;
    // The head is anchored shortly after the burst, without another request.
    const head = Number((await env.ctx.db.selectFrom('auditEvents').select((eb) => eb.fn.max('seq').as('s')).executeTakeFirstOrThrow()).s);
    const deadline = Date.now() + 5_000;
    while (headLines().at(-1)!.seq !== head && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(headLines().at(-1)!.seq).toBe(head);
    // One checkpoint per request before (30 lines); now the first at once, then one per cool-down.
    const written = headLines().length - before;
    expect(written).toBeGreaterThanOrEqual(1);
    expect(written).toBeLessThanOrEqual(2 + Math.ceil((Date.now() - started) / CHECKPOINT_COOL_DOWN_MS));
    expect(written).toBeLessThan(30);
    expect(elapsed).toBeGreaterThan(0);
  });
});
