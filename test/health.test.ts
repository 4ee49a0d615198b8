import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { createCustomer } from './helpers/fixtures.ts';

let env: TestEnv;
let api: Client;
let anon: Client;

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
  anon = client(env.app, null);
});
afterAll(async () => env?.close());

/** The value of one Prometheus sample line, or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf('}'));
    const have = Object.fromEntries([...body.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('health, readiness and metrics', () => {
  it('/healthz answers 200 without a key', async () => {
    const r = await anon.get('/healthz');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ok' });
  });

  it('/readyz is 200 with the database reachable and every migration applied', async () => {
    const r = await anon.get('/readyz');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ready', database: env.ctx.dbKind });
  });

  it('/readyz is 503 problem+json while a migration is pending, and ready again once applied', async () => {
    const last = await sql<{ name: string; timestamp: string }>`SELECT name, timestamp FROM lethe_migrations ORDER BY name DESC LIMIT 1`
      .execute(env.ctx.db);
    const row = last.rows[0]!;
    await sql`DELETE FROM lethe_migrations WHERE name = ${row.name}`.execute(env.ctx.db);
    try {
      const r = await anon.get('/readyz');
      expect(r.status).toBe(503);
      expect(r.body).toMatchObject({ status: 503, code: 'unavailable' });
      expect(r.body.detail).toContain('migration');
      expect(String(r.headers['content-type'])).toContain('application/problem+json');
    } finally {
      await sql`INSERT INTO lethe_migrations (name, timestamp) VALUES (${row.name}, ${row.timestamp})`.execute(env.ctx.db);
    }
    expect((await anon.get('/readyz')).status).toBe(200);
  });

  it('/metrics has request counters and latency histograms by route and status, and deletions', async () => {
    const c = await createCustomer(api);
    await api.get(`/v1/customers/${c.id}`);
    await api.get(`/v1/customers/${c.id}`);
    await api.get('/v1/customers/00000000-0000-4000-8000-000000000000');
    await anon.get('/v1/customers');
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
    const held = await createCustomer(api, { legalHold: true });
    expect((await api.del(`/v1/customers/${held.id}`)).status).toBe(409);

    const r = await anon.get('/metrics');
    expect(r.status).toBe(200);
    expect(String(r.headers['content-type'])).toMatch(/^text\/plain/);
    const text = r.raw;
    expect(text).toContain('# TYPE lethe_http_requests_total counter');
    expect(text).toContain('# TYPE lethe_http_request_duration_seconds histogram');
    const route = '/v1/customers/:id';
    expect(sample(text, 'lethe_http_requests_total', { method: 'GET', route, status: '200' })).toBe(2);
    expect(sample(text, 'lethe_http_requests_total', { method: 'GET', route, status: '404' })).toBe(1);
    expect(sample(text, 'lethe_http_requests_total', { method: 'GET', route: '/v1/customers', status: '401' })).toBe(1);
    expect(sample(text, 'lethe_http_requests_total', { method: 'DELETE', route, status: '204' })).toBe(1);
    expect(sample(text, 'lethe_http_request_duration_seconds_count', { method: 'GET', route, status: '200' })).toBe(2);
    expect(sample(text, 'lethe_http_request_duration_seconds_bucket', { method: 'GET', route, status: '200', le: '+Inf' })).toBe(2);
    expect(sample(text, 'lethe_customer_deletions_total', { outcome: 'deleted' })).toBe(1);
    expect(sample(text, 'lethe_customer_deletions_total', { outcome: 'legal_hold' })).toBe(1);
  });

  it('route labels are templates: ids and query strings never become label values', async () => {
    const c = await createCustomer(api, { email: 'metrics.person@example.com' });
    await api.get(`/v1/customers?email=${encodeURIComponent('metrics.person@example.com')}`);
    await api.get(`/v1/no/such/${c.id}`);
    const text = (await anon.get('/metrics')).raw;
    expect(text).not.toContain(c.id);
    expect(text).not.toContain('metrics.person');
    expect(sample(text, 'lethe_http_requests_total', { route: 'unmatched', status: '404' })).toBeGreaterThanOrEqual(1);
  });

  it('/readyz is 503 when the database cannot be reached (and /healthz stays 200)', async () => {
    const down = await createTestEnv();
    try {
      await down.ctx.db.destroy();
      const r = await client(down.app, null).get('/readyz');
      expect(r.status).toBe(503);
      expect(r.body).toMatchObject({ code: 'unavailable' });
      expect(r.body.detail).toContain('Database');
      expect((await client(down.app, null).get('/healthz')).status).toBe(200);
    } finally {
      await down.close().catch(() => undefined);
    }
  });
});
