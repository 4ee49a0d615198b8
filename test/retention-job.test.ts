import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { customerBody } from './helpers/fixtures.ts';

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
});
afterAll(async () => env?.close());

describe('POST /v1/jobs/{job}/run', () => {
  it('404 problem+json for an unknown job, naming the known ones', async () => {
    const r = await api.post('/v1/jobs/nope/run');
    expect(r.status).toBe(404);
    expect(r.body.code).toBe('not_found');
    expect(r.body.detail).toContain('retention');
  });

  it('retention purges stored idempotent responses older than 24 hours and keeps younger ones', async () => {
    const old = await api.post('/v1/customers', customerBody(), { 'idempotency-key': 'old-key' });
    expect(old.status).toBe(201);
    env.clock.advance(23 * 3600_000);
    const young = await api.post('/v1/customers', customerBody(), { 'idempotency-key': 'young-key' });
    expect(young.status).toBe(201);
    env.clock.advance(2 * 3600_000); // old: 25 h, young: 2 h
    const run = await api.post('/v1/jobs/retention/run');
    expect(run.status).toBe(200);
    expect(run.body.result['idempotency-keys']).toEqual({ deleted: 1 });
    const keys = await env.ctx.db.selectFrom('idempotencyKeys').select('key').execute();
    expect(keys.map((k) => k.key)).toEqual(['young-key']);
    // The young key still replays the first response.
    const replay = await api.post('/v1/customers', JSON.parse(JSON.stringify(customerBody())), { 'idempotency-key': 'young-key' });
    expect(replay.status).toBe(409); // a different body under the same key
  });
});
