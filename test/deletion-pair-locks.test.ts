import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockPair } from '../src/notifications/cases.repo.ts';
import type { DeletionStep } from '../src/plugin/registry.ts';
import { add, createApplication, createCustomer } from './helpers/fixtures.ts';
import { someoneWaitsOnAdvisoryLock } from './helpers/lock-waits.ts';
import { client, createTestEnv, TEST_DB, type Client, type TestEnv } from './helpers/runtime.ts';

/**
 * A DELETE locks each (customer, application) pair of its deletion cases (lockPairs) and reads
 * the cases in a later statement, so a change to a case committed while it waited is what it
 * reads and builds on.
 */
let env: TestEnv;
let api: Client;
beforeAll(async () => {
  env = await createTestEnv({ clockStart: '2026-06-01T08:00:00Z' });
  api = client(env.app, env.operatorKey);
});
afterAll(async () => { await env?.close(); });

const casesOf = (customerId: string) => env.ctx.db.selectFrom('deletionCases')
  .select(['applicationId', 'status', 'reason']).where('customerId', '=', customerId).orderBy('applicationId').execute();

describe('a DELETE and the pair locks of its deletion cases', () => {
  it.runIf(TEST_DB === 'postgres')('waits for a pair another transaction holds, then reads the case as that one committed it', async () => {
    const app = await createApplication(api);
    const c = await createCustomer(api);
    const lic = await add(api, c.id, 'licenses', { applicationId: app.id });
    expect((await api.post(`/v1/licenses/${lic.id}/cancel`)).status).toBe(200);
    expect(await casesOf(c.id)).toEqual([{ applicationId: app.id, status: 'grace', reason: null }]);

    let deleted: Promise<{ status: number }> | undefined;
    let settled = false;
    let waitingQuery = '';
    await env.ctx.db.transaction().execute(async (trx) => {
      // A pair-lock holder that does not touch the customer row (as a change to an existing case).
      await lockPair(trx, c.id, app.id);
      deleted = api.del(`/v1/customers/${c.id}`).then((r) => { settled = true; return r; });
      expect(await someoneWaitsOnAdvisoryLock(env.ctx.db)).toBe(true);
      waitingQuery = (await sql<{ query: string }>`SELECT query FROM pg_stat_activity
        WHERE wait_event_type = 'Lock' AND wait_event = 'advisory' AND datname = current_database()`.execute(env.ctx.db)).rows[0]!.query;
      // Confirmed while the DELETE waits (the case row locked by this transaction too): the DELETE
      // must read it so. A confirmed case stays confirmed; the 'grace' it held before would become required.
      await trx.updateTable('deletionCases').set({ status: 'confirmed', confirmedAt: env.clock.now(), updatedAt: env.clock.now() })
        .where('customerId', '=', c.id).where('applicationId', '=', app.id).execute();
      await new Promise((r) => setTimeout(r, 100));
      expect(settled).toBe(false);
    });
    expect((await deleted!).status).toBe(204);
    // The statement that waited is the pair locks' (lockPairs).
    expect(waitingQuery).toMatch(/^SELECT pg_advisory_xact_lock\(hashtextextended\(k\.key, 0\)\)/);
    expect(await casesOf(c.id)).toEqual([{ applicationId: app.id, status: 'confirmed', reason: null }]);
    const customer = await env.ctx.db.selectFrom('customers').select('deletedAt').where('id', '=', c.id).executeTakeFirstOrThrow();
    expect(customer.deletedAt).not.toBeNull();
  });

  it('an application a step adds, with no license, gets its pair locked and its case made required', async () => {
    const [licensed, added] = [await createApplication(api), await createApplication(api)];
    const c = await createCustomer(api);
    await add(api, c.id, 'licenses', { applicationId: licensed.id });
    const locks: string[] = [];
    const probe: DeletionStep = {
      name: 'adds-an-application', phase: 'before', order: 5,
      async run(_trx, ctx) { ctx.applicationIds.add(added.id); return null; },
    };
    // The step runs before the cases step; the locks held as it ends are the transaction's.
    const witness: DeletionStep = {
      name: 'lock-witness', phase: 'after', order: 25,
      async run(trx) {
        if (TEST_DB === 'postgres') {
          const rows = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_locks
            WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted`.execute(trx);
          locks.push(String(rows.rows[0]!.n));
        }
        return null;
      },
    };
    env.services.deletionSteps.push(probe, witness);
    try {
      expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
    } finally {
      for (const s of [probe, witness]) env.services.deletionSteps.splice(env.services.deletionSteps.indexOf(s), 1);
    }
    const expected = [licensed.id, added.id].sort().map((applicationId) => ({ applicationId, status: 'required', reason: 'customer_deleted' }));
    expect(await casesOf(c.id)).toEqual(expected);
    // Both pairs locked: the licensed one and the one the step added.
    if (TEST_DB === 'postgres') expect(locks).toEqual(['2']);
  });
});
