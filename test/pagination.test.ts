import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, createTestEnv, type Client, type Response, type TestEnv } from './helpers/runtime.ts';
import { add, createCustomer } from './helpers/fixtures.ts';

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
  // 520 customers straight into the table: runs of identical timestamps (ties broken by id) and
  // timestamps out of insertion order, so the walk cannot rely on either.
  const base = Date.parse('2026-01-01T00:00:00Z');
  const rows = Array.from({ length: 520 }, (_, i) => ({
    email: `page.${i}@example.com`, metadata: '{}', legalHold: false,
    createdAt: new Date(base + ((i * 7919) % 130) * 1000), updatedAt: new Date(base),
    deletedAt: null, redactedAt: null, profilePhotoKey: null, profilePhotoContentType: null,
  }));
  for (let i = 0; i < rows.length; i += 100) {
    await env.ctx.db.insertInto('customers').values(rows.slice(i, i + 100) as never).execute();
  }
});
afterAll(async () => env?.close());

async function walk(url: string, limit?: number) {
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const sep = url.includes('?') ? '&' : '?';
    const q: string = [limit ? `limit=${limit}` : '', cursor ? `cursor=${encodeURIComponent(cursor)}` : ''].filter(Boolean).join('&');
    const r: Response = await api.get(q ? `${url}${sep}${q}` : url);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual(['data', 'nextCursor']);
    if (limit) expect(r.body.data.length).toBeLessThanOrEqual(limit);
    seen.push(...r.body.data.map((x: { id: string }) => x.id));
    cursor = r.body.nextCursor;
    pages++;
    expect(pages).toBeLessThan(1000);
  } while (cursor);
  return { seen, pages };
}

const liveCustomerIds = async () => (await env.ctx.db.selectFrom('customers').select('id').where('deletedAt', 'is', null).execute())
  .map((r) => r.id).sort();

describe('cursor pagination', () => {
  it('default limit is 50, with a cursor to the next page', async () => {
    const r = await api.get('/v1/customers');
    expect(r.body.data).toHaveLength(50);
    expect(typeof r.body.nextCursor).toBe('string');
  });

  it('limit may be 500 and not more; 0 and non-numbers are 400', async () => {
    const r = await api.get('/v1/customers?limit=500');
    expect(r.status).toBe(200);
    expect(r.body.data).toHaveLength(500);
    expect(r.body.nextCursor).not.toBeNull();
    for (const bad of ['501', '0', '-1', '1.5', 'ten']) {
      const e = await api.get(`/v1/customers?limit=${bad}`);
      expect(e.status, bad).toBe(400);
      expect(e.body.code).toBe('validation_failed');
      expect(e.body.detail).toContain('limit');
    }
  });

  it('a cursor walk visits every row exactly once, in a stable order, for several page sizes', async () => {
    const expected = await liveCustomerIds();
    for (const limit of [1, 7, 50, 500]) {
      if (limit === 1) {
        // One row per page over a smaller collection keeps this quick.
        const c = await createCustomer(api);
        for (let i = 0; i < 5; i++) await add(api, c.id, 'addresses', { city: `C${i}` });
        const { seen, pages } = await walk(`/v1/customers/${c.id}/addresses`, 1);
        expect(seen).toHaveLength(5);
        expect(new Set(seen).size).toBe(5);
        expect(pages).toBe(5);
        continue;
      }
      const { seen } = await walk('/v1/customers', limit);
      expect(new Set(seen).size, `limit ${limit}: duplicates`).toBe(seen.length);
      expect([...seen].sort(), `limit ${limit}`).toEqual(await liveCustomerIds());
      expect(seen.length).toBeGreaterThanOrEqual(expected.length);
    }
  });

  it('the last page has nextCursor null, also when the rows end exactly on a page boundary', async () => {
    const c = await createCustomer(api);
    for (let i = 0; i < 4; i++) await add(api, c.id, 'memberships', { name: `m${i}` });
    const first = await api.get(`/v1/customers/${c.id}/memberships?limit=2`);
    const second = await api.get(`/v1/customers/${c.id}/memberships?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body.data).toHaveLength(2);
    expect(second.body.nextCursor).toBeNull();
  });

  it('rows added during a walk do not make it repeat or skip the others', async () => {
    const before = await liveCustomerIds();
    const seen: string[] = [];
    let r = await api.get('/v1/customers?limit=100');
    seen.push(...r.body.data.map((x: { id: string }) => x.id));
    const added = await createCustomer(api); // fake clock: later than every seeded row
    while (r.body.nextCursor) {
      r = await api.get(`/v1/customers?limit=100&cursor=${r.body.nextCursor}`);
      seen.push(...r.body.data.map((x: { id: string }) => x.id));
    }
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of before) expect(seen).toContain(id);
    expect(seen).toContain(added.id);
  });

  it('deleted customers are never listed', async () => {
    const c = await createCustomer(api);
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
    const { seen } = await walk('/v1/customers', 500);
    expect(seen).not.toContain(c.id);
  });

  it('a cursor that this API did not return is 400 validation_failed naming the cursor', async () => {
    const forged = [
      'garbage', '%%%', 'x'.repeat(400),
      Buffer.from('{"t":"yesterday","id":"00000000-0000-4000-8000-000000000000"}').toString('base64url'),
      Buffer.from('{"t":"2026-01-01T00:00:00Z","id":"1; DROP TABLE customers"}').toString('base64url'),
      Buffer.from('[1,2]').toString('base64url'),
      Buffer.from('null').toString('base64url'),
    ];
    for (const cursor of forged) {
      for (const url of ['/v1/customers', '/v1/applications', '/v1/audit-events']) {
        const r = await api.get(`${url}?cursor=${encodeURIComponent(cursor)}`);
        expect(r.status, `${url} ${cursor}`).toBe(400);
        expect(r.body.code).toBe('validation_failed');
        expect(r.body.detail).toContain('cursor');
      }
    }
    expect((await api.get('/v1/customers?limit=1')).status).toBe(200);
  });

  it('audit events paginate with the same contract', async () => {
    for (let i = 0; i < 3; i++) await api.post('/v1/applications', { name: `pg-${i}` });
    const total = Number((await env.ctx.db.selectFrom('auditEvents').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const { seen } = await walk('/v1/audit-events', 2);
    expect(seen).toHaveLength(total);
    expect(new Set(seen).size).toBe(total);
  });
});
