import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, createTestEnv, type TestEnv } from './helpers/runtime.ts';

let env: TestEnv;
beforeAll(async () => { env = await createTestEnv({ env: { LETHE_RATE_LIMIT_PER_MINUTE: '5' } }); });
afterAll(async () => env?.close());

describe('per-key rate limits', () => {
  it('answers 429 problem+json with Retry-After past the limit, and one key never affects another', async () => {
    const admin = client(env.app, env.operatorKey);
    const second = (await admin.post('/v1/api-keys', { kind: 'operator' })).body.key as string;
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await admin.get('/v1/customers')).status);
    // one request was already spent creating the second key
    expect(statuses.filter((s) => s === 200)).toHaveLength(4);
    const limited = await admin.get('/v1/customers');
    expect(limited.status).toBe(429);
    expect(limited.headers['content-type']).toContain('application/problem+json');
    expect(limited.body).toMatchObject({ code: 'rate_limited', status: 429 });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);

    const other = client(env.app, second);
    expect((await other.get('/v1/customers')).status).toBe(200);
    // Health and metrics are not rate limited.
    for (let i = 0; i < 10; i++) expect((await env.app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });
});
