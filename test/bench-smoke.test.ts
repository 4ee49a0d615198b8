// The benchmark's deletion floor must keep changing the same rows as the server's DELETE: one
// standard customer deleted through the API, one by the floor's pgbench script, and what each
// left in every customer-linked table compared (PostgreSQL only: pgbench needs a server).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureFeed, insertApplications, insertCustomers, insertFeed, type Exec } from '../bench/fixtures.ts';
import { floorScript } from '../bench/floor.ts';
import { MASTER_KEY, runPgbench } from '../bench/lib.ts';
import { deletionShape, diffShapes } from '../bench/signature.ts';
import { client, createTestEnv, TEST_DB, type TestEnv } from './helpers/runtime.ts';
import { describeNeeding } from './helpers/tools.ts';

// Without pgbench: listed at the end of the run with its install command; a failure under CI=true.
const suite = TEST_DB === 'postgres' ? describeNeeding('pgbench') : describe.skip;

suite('bench floor', () => {
  let env: TestEnv;
  let c: pg.Client;
  let exec: Exec;
  beforeAll(async () => {
    env = await createTestEnv({ env: { LETHE_MASTER_KEY: MASTER_KEY } });
    c = new pg.Client({ connectionString: env.databaseUrl });
    await c.connect();
    exec = async (text) => c.query(text);
  });
  afterAll(async () => { await c?.end(); await env?.close(); });

  it('changes the same rows as DELETE /v1/customers/{id}', async () => {
    await ensureFeed(exec);
    const ids = await insertFeed(exec, 1, 2);
    await insertCustomers(exec, 1, 2, await insertApplications(exec));
    const api = client(env.app, env.operatorKey);
    expect((await api.del(`/v1/customers/${ids[0]}`)).status).toBe(204);

    await exec(`CREATE SEQUENCE bench_floor_seq START 2`);
    const actor = String((await exec(`SELECT id FROM api_keys ORDER BY created_at LIMIT 1`)).rows[0].id);
    const r = runPgbench(env.databaseUrl!, floorScript(), { transactionsPerClient: 1, clients: 1, defines: { actor } });
    expect(r.failed).toBe(0);
    expect((await api.get(`/v1/customers/${ids[1]}`)).status).toBe(404);

    const feed = (await exec(`SELECT id, ref FROM bench_feed ORDER BY n`)).rows as Array<{ id: string; ref: string }>;
    const server = await deletionShape(exec, feed[0]!.id, feed[0]!.ref);
    const floor = await deletionShape(exec, feed[1]!.id, feed[1]!.ref);
    expect(Object.keys(server).length).toBeGreaterThan(5);
    expect(diffShapes(server, floor)).toEqual([]);
  });
});
