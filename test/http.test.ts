import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeTableOf } from '../src/http/auth.ts';
import { client, createTestEnv, type Client, type Response, type TestEnv } from './helpers/runtime.ts';
import { createApplication, createAppKey, createCustomer } from './helpers/fixtures.ts';

let env: TestEnv;
let api: Client;
let anon: Client;
let appApi: Client;

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
  anon = client(env.app, null);
  const app = await createApplication(api);
  appApi = client(env.app, await createAppKey(api, [app.id]));
});
afterAll(async () => env?.close());

/** RFC 9457 with the SPEC's fields, the request id of the response, and the HTTP status in the body. */
function expectProblem(r: Response, status: number, code: string) {
  expect(r.status, r.raw.slice(0, 300)).toBe(status);
  expect(String(r.headers['content-type'])).toMatch(/^application\/problem\+json/);
  expect(r.body).toMatchObject({ status, code });
  for (const field of ['type', 'title', 'detail', 'code', 'requestId']) {
    expect(typeof r.body[field], field).toBe('string');
    expect(r.body[field].length, field).toBeGreaterThan(0);
  }
  expect(r.body.type).toMatch(/^https?:\/\//);
  expect(r.body.requestId).toBe(r.headers['x-request-id']);
}

const MISSING = '00000000-0000-4000-8000-000000000000';

describe('errors are problem+json', () => {
  it('401 without a key and with an unknown key', async () => {
    expectProblem(await anon.get('/v1/customers'), 401, 'unauthorized');
    expectProblem(await client(env.app, 'lethe_op_nope_nope_nope_nope_nope').get('/v1/customers'), 401, 'unauthorized');
    const r = await client(env.app, null).call('GET', '/v1/customers', undefined, { authorization: 'Basic abc' });
    expectProblem(r, 401, 'unauthorized');
  });

  it('403 for an application key on an operator route', async () => {
    expectProblem(await appApi.get('/v1/customers'), 403, 'forbidden');
  });

  it('404 for an unknown route, an unknown method and an unknown record', async () => {
    expectProblem(await api.get('/v1/nothing-here'), 404, 'not_found');
    expectProblem(await api.get('/nothing-here'), 404, 'not_found');
    expectProblem(await api.put('/v1/customers', {}), 404, 'not_found');
    expectProblem(await api.get(`/v1/customers/${MISSING}`), 404, 'not_found');
    // An unknown route is 404 with or without a key (the route list is public anyway).
    expectProblem(await anon.get('/v1/nothing-here'), 404, 'not_found');
    expectProblem(await anon.post('/v1/customers/x/y/z', {}), 404, 'not_found');
  });

  it('request ids differ per request', async () => {
    const a = await api.get(`/v1/customers/${MISSING}`);
    const b = await api.get(`/v1/customers/${MISSING}`);
    expect(a.body.requestId).not.toBe(b.body.requestId);
  });

  it('a client-sent request id is not trusted as ours', async () => {
    const r = await api.get(`/v1/customers/${MISSING}`, { 'x-request-id': 'attacker-chosen' });
    expect(r.body.requestId).not.toBe('attacker-chosen');
  });
});

describe('body limits and parsing', () => {
  it('413 for a JSON body over 1 MiB, and nothing is created', async () => {
    const before = await env.ctx.db.selectFrom('customers').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const body = JSON.stringify({ firstName: 'x'.repeat(1024 * 1024) });
    const r = await api.call('POST', '/v1/customers', body, { 'content-type': 'application/json' });
    expectProblem(r, 413, 'payload_too_large');
    const after = await env.ctx.db.selectFrom('customers').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(after.n)).toBe(Number(before.n));
  });

  it('a body just under 1 MiB is parsed (then judged by the schema, 400 not 413)', async () => {
    const body = JSON.stringify({ firstName: 'x'.repeat(1024 * 1024 - 100) });
    const r = await api.call('POST', '/v1/customers', body, { 'content-type': 'application/json' });
    expectProblem(r, 400, 'validation_failed');
    expect(r.body.detail).toContain('firstName');
  });

  it('413 for a profile photo over 1 MiB', async () => {
    const c = await createCustomer(api);
    const filesBefore = await env.ctx.blobs.list('photos');
    const r = await api.put(`/v1/customers/${c.id}/profile-photo`, Buffer.alloc(1024 * 1024 + 1, 1), { 'content-type': 'image/png' });
    expectProblem(r, 413, 'payload_too_large');
    // Nothing was stored: no file, no key on the customer, no photo to fetch.
    expect(await env.ctx.blobs.list('photos')).toEqual(filesBefore);
    const row = await env.ctx.db.selectFrom('customers').select(['profilePhotoKey']).where('id', '=', c.id).executeTakeFirstOrThrow();
    expect(row.profilePhotoKey).toBeNull();
    expect((await api.get(`/v1/customers/${c.id}/profile-photo`)).status).toBe(404);
  });

  it('malformed JSON is 400 validation_failed', async () => {
    for (const raw of ['{"email":', '{email: 1}', '[1,2', '\u0000', 'null x']) {
      const r = await api.call('POST', '/v1/customers', raw, { 'content-type': 'application/json' });
      expectProblem(r, 400, 'validation_failed');
    }
  });

  it('an empty JSON body on a route that needs one is 400', async () => {
    const r = await api.call('POST', '/v1/applications', '', { 'content-type': 'application/json' });
    expectProblem(r, 400, 'validation_failed');
  });

  it('415 for a content type the route does not take', async () => {
    const r = await api.call('POST', '/v1/customers', 'email=a@example.com', { 'content-type': 'application/x-www-form-urlencoded' });
    expectProblem(r, 415, 'unsupported_media_type');
  });

  it('wrong types are 400 validation_failed naming the field', async () => {
    const c = await createCustomer(api);
    const cases: Array<[string, string, unknown, string]> = [
      ['POST', '/v1/customers', { email: 5 }, 'email'],
      ['POST', '/v1/customers', { legalHold: 'yes' }, 'legalHold'],
      ['POST', '/v1/customers', { email: 'not an email' }, 'email'],
      ['POST', '/v1/customers', { metadata: { tier: 3 } }, 'metadata'],
      ['POST', '/v1/customers', { lastLoginSuccessIp: '999.1.1.1' }, 'lastLoginSuccessIp'],
      ['POST', '/v1/customers', { shoeSize: 42 }, 'shoeSize'],
      ['POST', '/v1/customers', { metadata: { ['k'.repeat(41)]: 'v' } }, 'metadata'],
      ['POST', '/v1/customers', { metadata: { '': 'v' } }, 'metadata'],
      ['POST', '/v1/customers', [], 'body'],
      ['PATCH', `/v1/customers/${c.id}`, {}, 'body'],
      ['POST', `/v1/customers/${c.id}/invoices`, { number: 'I-1', amountMinor: '5', currency: 'EUR' }, 'amountMinor'],
      ['POST', `/v1/customers/${c.id}/invoices`, { number: 'I-1', amountMinor: 5 }, 'currency'],
      ['POST', `/v1/customers/${c.id}/invoices`, { number: 'I-1', amountMinor: 1.5, currency: 'EUR' }, 'amountMinor'],
      ['POST', `/v1/customers/${c.id}/payment-methods`, { expMonth: 13 }, 'expMonth'],
      ['POST', `/v1/customers/${c.id}/subscriptions`, { plan: 'p', status: 'paused' }, 'status'],
      ['POST', `/v1/customers/${c.id}/licenses`, { applicationId: 'nope' }, 'applicationId'],
      ['POST', '/v1/api-keys', { kind: 'root' }, 'kind'],
    ];
    for (const [method, url, body, field] of cases) {
      const r = await api.call(method, url, JSON.stringify(body), { 'content-type': 'application/json' });
      expectProblem(r, 400, 'validation_failed');
      expect(r.body.detail, `${method} ${url} ${JSON.stringify(body)}`).toContain(field);
    }
  });

  it('query strings and path ids are validated too, naming the parameter', async () => {
    const r1 = await api.get('/v1/customers?limit=abc');
    expectProblem(r1, 400, 'validation_failed');
    expect(r1.body.detail).toContain('limit');
    const r2 = await api.get('/v1/customers/not-a-uuid');
    expectProblem(r2, 400, 'validation_failed');
    expect(r2.body.detail).toContain('id');
    const r3 = await api.get('/v1/customers?colour=red');
    expectProblem(r3, 400, 'validation_failed');
    expect(r3.body.detail).toContain('colour');
  });
});

describe('OpenAPI 3.1 at /openapi.json', () => {
  let doc: { openapi: string; paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };

  beforeAll(async () => {
    const r = await anon.get('/openapi.json');
    expect(r.status).toBe(200);
    doc = r.body;
  });

  const toOpenApi = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

  it('is OpenAPI 3.1 and served without a key', () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
  });

  it('lists every registered API route (taken from the live route table)', () => {
    const table = routeTableOf(env.app);
    expect(table.length).toBeGreaterThan(30);
    const api = table.filter((r) => r.url.startsWith('/v1/') || ['/healthz', '/readyz', '/metrics', '/openapi.json'].includes(r.url));
    for (const route of api) {
      expect(route.hidden, `${route.method} ${route.url} is hidden from the OpenAPI document`).toBe(false);
      const op = doc.paths[toOpenApi(route.url)]?.[route.method.toLowerCase()];
      expect(op, `${route.method} ${route.url} missing from /openapi.json`).toBeDefined();
    }
  });

  it('documents the error codes every route can answer with', () => {
    for (const route of routeTableOf(env.app)) {
      const op = doc.paths[toOpenApi(route.url)]?.[route.method.toLowerCase()];
      if (!op) continue;
      const codes = Object.keys(op.responses).map(Number);
      const where = `${route.method} ${route.url} documents ${codes.join(',')}`;
      expect(codes.some((c) => c >= 200 && c < 300), where).toBe(true);
      if (route.access !== 'public') for (const c of [400, 401, 403, 429, 500]) expect(codes, where).toContain(c);
      if (route.method === 'POST') expect(codes, where).toContain(409);
      if (['POST', 'PUT', 'PATCH'].includes(route.method)) for (const c of [413, 415]) expect(codes, where).toContain(c);
      if (/:[a-zA-Z]/.test(route.url) && route.access !== 'public') expect(codes, where).toContain(404);
    }
  });

  it('readyz documents its 503', () => {
    expect(Object.keys(doc.paths['/readyz']!.get!.responses)).toContain('503');
  });

  // Runs last in this file: every status this file provoked on a documented route must be documented.
  it('every status observed in this file is documented for its route', async () => {
    const metric = await env.ctx.metrics.httpRequests.get();
    let checked = 0;
    for (const { labels } of metric.values) {
      const op = doc.paths[toOpenApi(String(labels.route))]?.[String(labels.method).toLowerCase()];
      if (!op) continue;
      checked++;
      expect(Object.keys(op.responses), `${labels.method} ${labels.route} answered ${labels.status}`).toContain(String(labels.status));
    }
    expect(checked).toBeGreaterThan(5);
  });
});
