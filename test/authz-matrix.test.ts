import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COLLECTIONS } from '../src/customers/collections.ts';
import { routeTableOf, type Access, type RouteEntry } from '../src/http/auth.ts';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createApplication, createAppKey, createCustomer, populate } from './helpers/fixtures.ts';

/**
 * The authorization matrix (issue 7), generated from the live route table: every route the app
 * registered, whoever registered it, is called with every kind of credential. What each kind may
 * do is decided by the route's declared access level (`config.access`), never by a list of routes
 * here, so a route added later is covered the day it is registered.
 */

type Cred = 'none' | 'bad' | 'operator' | 'own' | 'other' | 'multi';
/** allowed: the call gets past authorization (status documented for the route, never 401/403/5xx;
 *  an operator's write on the world's own records must really succeed: 2xx);
 *  scoped: an application looking at a customer it holds no license for → 404, elsewhere allowed but filtered. */
type Expectation = 401 | 403 | 'allowed' | 'scoped';

// SPEC "Actors and credentials": missing/unknown key 401; a key of the wrong kind or scope 403.
const RULES: Record<Access, Record<Cred, Expectation>> = {
  public: { none: 'allowed', bad: 'allowed', operator: 'allowed', own: 'allowed', other: 'allowed', multi: 'allowed' },
  operator: { none: 401, bad: 401, operator: 'allowed', own: 403, other: 403, multi: 403 },
  application: { none: 401, bad: 401, operator: 403, own: 'allowed', other: 'scoped', multi: 'allowed' },
  any: { none: 401, bad: 401, operator: 'allowed', own: 'allowed', other: 'scoped', multi: 'allowed' },
};
// Operators last: their calls may delete the world's customer.
const ORDER: Cred[] = ['none', 'bad', 'other', 'own', 'multi', 'operator'];

let env: TestEnv;
let api: Client;
let apps: { own: string; other: string; third: string };
let keys: Record<Cred, string | null>;
let doc: { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };

/** The records one matrix row works on: the owning application's customer and another application's. */
interface World {
  customer: string; subscription: string; license: string; transaction: string; deleted: string;
  /** An application key of the world's own (revoked by the DELETE row). */
  apiKey: string;
  /** One record of the customer per collection path, for /v1/customers/{id}/{collection}/{itemId}. */
  items: Record<string, string>;
  /** The webhook (outbox row) notifying the owning application of the deleted customer's case. */
  webhook: string;
  /** Never to be seen by the owning application's keys. */
  foreign: string[];
  /** Never to be seen by the other application's key. */
  owned: string[];
}

async function makeWorld(): Promise<World> {
  // The owning application has an endpoint (never reached: no dispatcher runs here), so a test
  // webhook can be sent to it; set again for each world, as a self-service PATCH clears it.
  expect((await api.patch(`/v1/applications/${apps.own}`, { webhookUrl: 'http://127.0.0.1:9/hook' })).status).toBe(200);
  const owned = await createCustomer(api);
  const ids = await populate(api, owned.id, [apps.own]);
  await api.put(`/v1/customers/${owned.id}/profile-photo`, Buffer.from('89504e470d0a1a0a', 'hex'), { 'content-type': 'image/png' });
  const foreign = await createCustomer(api);
  const fIds = await populate(api, foreign.id, [apps.other]);
  const thirdOnly = await createCustomer(api);
  const tIds = await populate(api, thirdOnly.id, [apps.third]);
  // Deleted customers make deletion cases due at once: one for each side.
  const deletedOwn = await createCustomer(api);
  const dIds = await populate(api, deletedOwn.id, [apps.own]);
  const deletedForeign = await createCustomer(api);
  const dfIds = await populate(api, deletedForeign.id, [apps.other]);
  // A cancelled license opens a grace-period case for the other application.
  const graceForeign = await createCustomer(api);
  const gIds = await populate(api, graceForeign.id, [apps.other]);
  await api.post(`/v1/licenses/${gIds.licenseIds[0]}/cancel`);
  for (const id of [deletedOwn.id, deletedForeign.id]) expect((await api.del(`/v1/customers/${id}`)).status).toBe(204);
  const apiKey = (await api.post('/v1/api-keys', { kind: 'application', applicationIds: [apps.own] })).body.id as string;
  const items: Record<string, string> = {};
  for (const def of COLLECTIONS) {
    const r = await api.get(`/v1/customers/${owned.id}/${def.path}`);
    items[def.path] = r.body.data[0].id;
  }
  const health = await api.get(`/v1/delivery-health?applicationId=${apps.own}&limit=500`);
  const webhook = (health.body.data as Array<{ subscriptionId: string; webhookId: string }>).find((h) => h.subscriptionId === deletedOwn.id)?.webhookId;
  if (!webhook) throw new Error(`authz matrix: no webhook for the deleted customer's case (${health.status})`);
  // A pending transaction (only those change status), on a customer of its own: it would block the
  // owned customer's DELETE.
  const payer = await createCustomer(api);
  const pending = await add(api, payer.id, 'transactions', { amountMinor: 100, currency: 'EUR', status: 'pending' });
  return {
    customer: owned.id, subscription: ids.subscriptionId, license: ids.licenseIds[0]!, transaction: pending.id, deleted: deletedOwn.id, webhook,
    apiKey, items,
    foreign: [foreign.id, ...fIds.licenseIds, deletedForeign.id, ...dfIds.licenseIds, graceForeign.id, ...gIds.licenseIds, foreign.email, apps.other],
    // The third application is the multi-application key's second one: its data is not "foreign" to that key.
    owned: [owned.id, ...ids.licenseIds, deletedOwn.id, ...dIds.licenseIds, owned.email, apps.own, thirdOnly.id, ...tIds.licenseIds],
  };
}

/** Routes only the local CLI's token may use (src/backups/database-backup.routes.ts); any API key gets 404. */
const LOCAL_CLI_ONLY = new Set(['POST /v1/backups/archives/:id/open']);

/** A concrete URL for a route template; unknown parameters fail loudly so a new one gets a fixture. */
function fill(route: RouteEntry, w: World): string {
  const byCollection: Record<string, string> = {
    customers: w.customer, subscriptions: w.subscription, licenses: w.license, transactions: w.transaction,
    applications: apps.own, deletions: w.deleted, 'api-keys': w.apiKey, archives: w.deleted,
  };
  const byName: Record<string, string> = { job: 'retention', dataset: 'customers', customerId: w.deleted, webhookId: w.webhook };
  const parts = route.url.split('/');
  return parts.map((part, i) => {
    if (part === '*') return '';
    if (!part.startsWith(':')) return part;
    const name = part.slice(1);
    const value = byName[name] ?? (name === 'id' ? byCollection[parts[i - 1]!] : name === 'itemId' ? w.items[parts[i - 1]!] : undefined);
    if (!value) throw new Error(`authz matrix: no fixture for ${part} in ${route.method} ${route.url}; add one to fill()`);
    return value;
  }).join('/');
}

/** Like the test client, but parses only JSON documents (an export may be JSON lines or CSV). */
async function call(key: string | null, method: string, url: string, body?: unknown) {
  // A Buffer is sent as an image (the photo upload); anything else as JSON.
  const type = Buffer.isBuffer(body) ? 'image/png' : 'application/json';
  const res = await env.app.inject({
    method: method as 'GET', url,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': type } : {}) },
    ...(body !== undefined ? { payload: Buffer.isBuffer(body) ? body : JSON.stringify(body) } : {}),
  });
  const answered = String(res.headers['content-type'] ?? '');
  const parsed = /^application\/(problem\+)?json/.test(answered) && res.body ? JSON.parse(res.body) as Record<string, unknown> : null;
  return { status: res.statusCode, body: parsed, raw: res.body };
}

type JsonSchema = { type?: string | string[]; const?: unknown; enum?: unknown[]; anyOf?: JsonSchema[]; oneOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>; required?: string[]; items?: JsonSchema; minItems?: number; format?: string;
  pattern?: string; minLength?: number; minimum?: number; maximum?: number; minProperties?: number };

/**
 * A minimal valid body for a route, from its documented request schema, naming the world's own
 * records: so admitted callers reach the handler (not just validation), and the other application
 * must be refused by the handler itself when it names records that are not its own.
 */
function minimalBody(schema: JsonSchema | undefined, w: World, name = '', all = false): unknown {
  if (!schema) return undefined;
  if ('const' in schema) return schema.const;
  if (schema.enum) return schema.enum[0];
  const alts = schema.anyOf ?? schema.oneOf;
  if (alts) return minimalBody(alts.find((a) => a.type !== 'null') ?? alts[0], w, name, all);
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const keys = all ? Object.keys(schema.properties ?? {}) : [...schema.required ?? []];
      // A PATCH needs at least one property: the first ones it documents.
      for (const key of Object.keys(schema.properties ?? {})) if (keys.length < (schema.minProperties ?? 0) && !keys.includes(key)) keys.push(key);
      for (const key of keys) out[key] = minimalBody(schema.properties?.[key], w, key, all);
      return out;
    }
    case 'array': return schema.minItems || all ? [minimalBody(schema.items, w, name, all)] : [];
    case 'integer': case 'number': return Math.max(schema.minimum ?? 1, Math.min(schema.maximum ?? 1, 1));
    case 'boolean': return false;
    case 'string':
      if (schema.format === 'uuid') return /application/i.test(name) ? apps.own : /subscription|customer/i.test(name) ? w.deleted : w.customer;
      if (schema.format === 'email') return 'matrix@example.com';
      if (schema.format === 'date-time') return env.clock.now().toISOString();
      if (schema.pattern === '^[A-Z]{3}$') return 'EUR';
      return 'x'.repeat(Math.max(1, schema.minLength ?? 1));
    default: return {};
  }
}

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');

const toOpenApi = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
  apps = { own: (await createApplication(api)).id, other: (await createApplication(api)).id, third: (await createApplication(api)).id };
  keys = {
    none: null,
    bad: 'lethe_op_this_key_was_never_issued_0123456789',
    operator: env.operatorKey,
    own: await createAppKey(api, [apps.own]),
    other: await createAppKey(api, [apps.other]),
    multi: await createAppKey(api, [apps.own, apps.third]),
  };
  doc = (await api.get('/openapi.json')).body;
});
afterAll(async () => env?.close());

describe('authorization matrix (generated from the route table)', () => {
  it('the route table is the live one and every access level has a rule', () => {
    const table = routeTableOf(env.app);
    expect(table.length).toBeGreaterThan(40);
    for (const r of table) expect(RULES[r.access], `${r.method} ${r.url}: access ${r.access}`).toBeDefined();
    const levels = new Set(table.map((r) => r.access));
    for (const level of ['public', 'operator', 'any'] as const) expect(levels.has(level)).toBe(true);
  });

  it('every route × every credential answers exactly as SPEC says, and never leaks another application\'s data', async () => {
    const table = routeTableOf(env.app);
    const shared = await makeWorld();
    const failures: string[] = [];
    let calls = 0;
    for (const route of table) {
      // A route that changes state gets a world of its own, so rows never depend on each other.
      const w = route.method === 'GET' ? shared : await makeWorld();
      const url = fill(route, w);
      const isCustomerPath = /^\/v1\/customers\/:id(\/|$)/.test(route.url);
      // SPEC "Application API": an application reaches only its own applications; 403 for any other id.
      const isApplicationPath = /^\/v1\/applications\/:id(\/|$)/.test(route.url);
      const documented = doc.paths[toOpenApi(route.url)]?.[route.method.toLowerCase()];
      for (const cred of ORDER) {
        const expectation = RULES[route.access][cred];
        const content = (documented as { requestBody?: { content?: Record<string, { schema?: JsonSchema }> } } | undefined)
          ?.requestBody?.content;
        const requestSchema = content?.['application/json']?.schema;
        // The photo upload documents no JSON body: it takes the raw image.
        const takesImage = Object.keys(content ?? {}).some((t) => t.startsWith('image/'))
          || (route.method === 'PUT' && route.url.endsWith('/profile-photo'));
        // Self-service (SPEC "Application API"): an application key may change only its own webhookUrl,
        // so its minimal PATCH of an application is that field (a name change is 403, test/applications).
        const selfService = route.method === 'PATCH' && isApplicationPath && cred !== 'operator' && cred !== 'none' && cred !== 'bad';
        const body = !['POST', 'PUT', 'PATCH'].includes(route.method) ? undefined
          : takesImage ? PNG : selfService ? { webhookUrl: null } : (minimalBody(requestSchema, w) ?? {});
        const r = await call(keys[cred], route.method, url, body);
        calls++;
        const where = `${route.method} ${route.url} [${route.access}] as ${cred}: ${r.status} ${r.raw.slice(0, 160)}`;
        const fail = (why: string) => failures.push(`${where} — ${why}`);
        if (r.status >= 500) { fail('5xx'); continue; }
        if (typeof expectation === 'number') {
          if (r.status !== expectation) fail(`expected ${expectation}`);
          else if (r.body?.code !== (expectation === 401 ? 'unauthorized' : 'forbidden')) fail('wrong problem code');
          // A refused DELETE changed nothing: the customer it named is still there.
          if (route.method === 'DELETE' && (await api.get(`/v1/customers/${w.customer}`)).status !== 200) fail('the customer is gone');
        } else if (expectation === 'scoped' && isApplicationPath) {
          // A body that fails validation is 400 before the id is looked at; a valid one must be refused.
          const valid = body === undefined ? r : await call(keys[cred], route.method, url, minimalBody(requestSchema, w, '', true));
          if (valid.status !== 403 || valid.body?.code !== 'forbidden') fail(`expected 403: another application's id, got ${valid.status}`);
          if (r.status !== 403 && r.status !== 400) fail('expected 403 (or 400 for an invalid body)');
        } else if (expectation === 'scoped' && isCustomerPath) {
          if (r.status !== 404) fail('expected 404: the customer is not this application\'s');
        } else if (expectation === 'scoped' && requestSchema && body && Object.keys(body).length > 0) {
          // The body names the owning application's records: another application is refused by the handler.
          if (r.status !== 403 && r.status !== 404) fail('expected 403 or 404: the body names another application\'s records');
          // Also with every optional field filled (e.g. naming the owning application explicitly).
          const full = await call(keys[cred], route.method, url, minimalBody(requestSchema, w, '', true));
          if (full.status !== 403 && full.status !== 404) fail(`with every field: expected 403 or 404, got ${full.status}`);
          for (const value of w.owned) if (full.raw.includes(value)) fail(`body contains ${value}`);
        } else {
          if (r.status === 401 || r.status === 403) fail('refused a caller the route admits');
          // A read by an admitted caller on the world's own records succeeds.
          if (route.method === 'GET' && route.access !== 'public' && !(r.status >= 200 && r.status < 300)) fail('GET did not succeed');
          // An operator's write on the world's own records really happens (not a 404, 409 or 422 that merely got past auth).
          // Routes that exist only to refuse (SPEC: 405 for records that go with their customer) refuse, and the record stays.
          const refuses = (documented as { summary?: string } | undefined)?.summary?.startsWith('Not allowed (405)') === true;
          if (cred === 'operator' && route.method !== 'GET' && refuses) {
            if (r.status !== 405 || r.body?.code !== 'method_not_allowed') fail('expected 405 method_not_allowed');
            else if ((await api.get(url)).status !== 200) fail('the refused record is gone');
          // Except the one route reserved for the local CLI's token (lethe backup open while serving; test/deployment):
          // every API key, operator keys included, gets 404 there.
          } else if (LOCAL_CLI_ONLY.has(`${route.method} ${route.url}`)) {
            if (cred === 'operator' && (r.status !== 404 || r.body?.code !== 'not_found')) fail('expected 404: the route serves only the local CLI');
          } else if (cred === 'operator' && route.method !== 'GET' && !(r.status >= 200 && r.status < 300)) fail('operator write did not succeed');
        }
        if (documented && !(String(r.status) in documented.responses)) fail('status not documented for this route');
        // HEAD (served for every GET) is authorized exactly like the GET and sends no body.
        if (route.method === 'GET') {
          const head = await call(keys[cred], 'HEAD', url);
          if (head.status !== r.status) fail(`HEAD answered ${head.status}`);
          if (head.raw !== '') fail('HEAD sent a body');
        }
        // Isolation between applications: the body never names the other side's customers, licenses or cases.
        const forbidden = cred === 'own' || cred === 'multi' ? w.foreign : cred === 'other' ? w.owned : [];
        for (const value of forbidden) if (r.raw.includes(value)) fail(`body contains ${value}`);
      }
    }
    expect(calls).toBe(table.length * ORDER.length);
    expect(failures).toEqual([]);
  }, 600_000);

  it('every path id: an unknown id is 404 for every admitted caller, another application\'s customer 404 for an application', async () => {
    const table = routeTableOf(env.app).filter((r) => /\/:id(\/|$)/.test(r.url) && (r.method === 'GET' || r.method === 'DELETE'));
    expect(table.length).toBeGreaterThan(10);
    const w = await makeWorld();
    const foreignCustomer = w.foreign[0]!;
    const failures: string[] = [];
    for (const route of table) {
      const unknown = fill(route, w).replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/, '00000000-0000-4000-8000-000000000000');
      for (const cred of ORDER) {
        const expectation = RULES[route.access][cred];
        if (typeof expectation === 'number') continue; // refused before the id is looked at (matrix above)
        const r = await call(keys[cred], route.method, unknown);
        // An application key asking for an application id that is not its own: 403 whether it exists or not.
        const want = /^\/v1\/applications\/:id/.test(route.url) && cred !== 'operator' ? ['forbidden', 403] : ['not_found', 404];
        if (r.status !== want[1] || r.body?.code !== want[0]) failures.push(`${route.method} ${unknown} as ${cred}: ${r.status}`);
        if (/^\/v1\/customers\/:id/.test(route.url) && (cred === 'own' || cred === 'multi')) {
          const url = route.url.replace(':id', foreignCustomer);
          const f = await call(keys[cred], route.method, url);
          if (f.status !== 404) failures.push(`${route.method} ${url} (another application's customer) as ${cred}: ${f.status}`);
          if (f.raw.includes(foreignCustomer)) failures.push(`${route.method} ${url} as ${cred}: body names the customer`);
        }
      }
    }
    expect(failures).toEqual([]);
  }, 300_000);

  it('an application key lists only its own deletion cases', async () => {
    const table = routeTableOf(env.app);
    if (!table.some((r) => r.method === 'GET' && r.url === '/v1/data-deletions')) return;
    await makeWorld();
    const all = (await api.get('/v1/data-deletions?limit=500')).body.data as Array<{ applicationId: string }>;
    expect(all.some((c) => c.applicationId === apps.own)).toBe(true);
    expect(all.some((c) => c.applicationId === apps.other)).toBe(true);
    for (const [cred, allowed] of [['own', [apps.own]], ['other', [apps.other]], ['multi', [apps.own, apps.third]]] as const) {
      const r = await client(env.app, keys[cred]).get('/v1/data-deletions?limit=500');
      expect(r.status).toBe(200);
      expect(r.body.data.length).toBeGreaterThan(0);
      for (const c of r.body.data as Array<{ applicationId: string }>) expect(allowed as readonly string[]).toContain(c.applicationId);
      // Asking for another application's cases by filter yields nothing of theirs.
      const sneaky = await client(env.app, keys[cred]).get(`/v1/data-deletions?applicationId=${cred === 'other' ? apps.own : apps.other}`);
      expect([200, 403]).toContain(sneaky.status);
      if (sneaky.status === 200) expect(sneaky.body.data).toEqual([]);
    }
  }, 120_000);
});

/**
 * Issue 17: the same matrix over URL variants. The router decodes and normalises paths that the
 * old check read as raw text (`/%761/customers` was public). No spelling of a route may reach its
 * handler with less than its declared access: a variant may be 404 or 400, never a success.
 */
const HEX = (c: string, lower: boolean) => {
  const h = c.charCodeAt(0).toString(16).padStart(2, '0');
  return `%${lower ? h.toLowerCase() : h.toUpperCase()}`;
};

/** The URL's static characters (not a filled parameter value), as [start, end) ranges. */
function staticRanges(route: RouteEntry, url: string): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  let pos = 0;
  const parts = route.url.split('/');
  const filled = url.split('/');
  parts.forEach((part, i) => {
    const seg = filled[i] ?? '';
    if (i > 0) pos += 1; // the slash
    if (!part.startsWith(':') && part !== '*') ranges.push([pos, pos + seg.length]);
    pos += seg.length;
  });
  return ranges;
}

/** Every systematic spelling of `url`'s static part (issue 17 list). */
function urlVariants(route: RouteEntry, url: string): string[] {
  const out = new Set<string>();
  for (const [start, end] of staticRanges(route, url)) {
    for (let i = start; i < end; i++) {
      for (const lower of [false, true]) out.add(url.slice(0, i) + HEX(url[i]!, lower) + url.slice(i + 1));
    }
  }
  const enc = (lower: boolean) => {
    let s = '';
    const ranges = staticRanges(route, url);
    for (let i = 0; i < url.length; i++) s += ranges.some(([a, b]) => i >= a && i < b) ? HEX(url[i]!, lower) : url[i]!;
    return s;
  };
  out.add(enc(false)); out.add(enc(true));
  const slashes = [...url].flatMap((c, i) => (c === '/' ? [i] : []));
  for (const i of slashes) {
    out.add(`${url.slice(0, i)}//${url.slice(i + 1)}`);
    if (i > 0) out.add(`${url.slice(0, i)}%2F${url.slice(i + 1)}`);
    if (i > 0) out.add(`${url.slice(0, i)}%2f${url.slice(i + 1)}`);
    out.add(`${url.slice(0, i)}/./${url.slice(i + 1)}`);
    out.add(`${url.slice(0, i)}/%2e/${url.slice(i + 1)}`);
    out.add(`${url.slice(0, i)}/x/../${url.slice(i + 1)}`);
    out.add(`${url.slice(0, i)}/x/%2e%2e/${url.slice(i + 1)}`);
  }
  out.add(`${url}/`); out.add(`${url}//`); out.add(`${url}/.`); out.add(`${url}?`); out.add(`${url}#x`); out.add(`${url};x`);
  out.add(url.toUpperCase());
  out.add(url.replace(/\/([a-z])/g, (_m, c: string) => `/${c.toUpperCase()}`));
  out.delete(url);
  return [...out];
}

/** Callers with less than the route's declared access. */
function underprivileged(access: Access): Cred[] {
  return (['none', 'bad', 'own', 'operator'] as Cred[]).filter((c) => typeof RULES[access][c] === 'number');
}

/** Rows a handler reaching the database would change (any effect counts). */
async function effects(): Promise<string> {
  const db = env.ctx.db;
  const counts = await Promise.all((['customers', 'auditEvents', 'apiKeys', 'applications', 'licenses', 'subscriptions', 'idempotencyKeys',
    'settings'] as const).map(async (t) => (await db.selectFrom(t).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n));
  const updated = await db.selectFrom('customers').select((eb) => eb.fn.max('updatedAt').as('u')).executeTakeFirstOrThrow();
  return JSON.stringify([counts.map(Number), updated.u]);
}

const REFUSED = new Set([400, 401, 403, 404, 405]);

describe('authorization over URL variants (issue 17)', () => {
  it('no spelling of any route reaches its handler with less than the declared access', async () => {
    const table = routeTableOf(env.app).filter((r) => r.access !== 'public');
    const w = await makeWorld();
    const before = await effects();
    const failures: string[] = [];
    let calls = 0;
    for (const route of table) {
      const url = fill(route, w);
      const body = ['POST', 'PUT', 'PATCH'].includes(route.method) ? {} : undefined;
      for (const variant of urlVariants(route, url)) {
        for (const cred of underprivileged(route.access)) {
          const r = await call(keys[cred], route.method, variant, body);
          calls++;
          if (!REFUSED.has(r.status)) failures.push(`${route.method} ${variant} [${route.access}] as ${cred}: ${r.status} ${r.raw.slice(0, 120)}`);
        }
      }
    }
    expect(calls).toBeGreaterThan(2000);
    expect(failures).toEqual([]);
    expect(await effects()).toBe(before);
    // The admitted caller gets through the same spellings wherever the router matches them (never a 5xx).
    for (const route of table.filter((r) => r.method === 'GET')) {
      for (const variant of urlVariants(route, fill(route, w)).slice(0, 12)) {
        const cred = route.access === 'application' ? 'own' : 'operator';
        const r = await call(keys[cred], 'GET', variant);
        if (r.status >= 500) failures.push(`${variant} as ${cred}: ${r.status}`);
      }
    }
    expect(failures).toEqual([]);
  }, 600_000);

  it('property: random spellings (fast-check) never let a lesser credential through', async () => {
    const table = routeTableOf(env.app).filter((r) => r.access !== 'public');
    const w = await makeWorld();
    const before = await effects();
    const transform = fc.array(fc.oneof(
      fc.record({ kind: fc.constant('encode' as const), at: fc.nat(), lower: fc.boolean() }),
      fc.record({ kind: fc.constantFrom('double' as const, 'dot' as const, 'dotdot' as const, 'slash2f' as const), at: fc.nat() }),
      fc.record({ kind: fc.constantFrom('upper' as const, 'trailing' as const), at: fc.nat() }),
    ), { minLength: 1, maxLength: 6 });
    await fc.assert(fc.asyncProperty(fc.nat(table.length - 1), transform, fc.constantFrom<Cred>('none', 'bad', 'own', 'operator'),
      async (index, steps, cred) => {
        const route = table[index]!;
        if (typeof RULES[route.access][cred] !== 'number') return;
        let url = fill(route, w);
        for (const step of steps) {
          const ranges = staticRanges(route, url).filter(([a, b]) => b > a);
          const positions = ranges.flatMap(([a, b]) => Array.from({ length: b - a }, (_, k) => a + k));
          const slashes = [...url].flatMap((c, i) => (c === '/' && !url.slice(i).startsWith('/%') ? [i] : []));
          const p = positions.length ? positions[step.at % positions.length]! : 0;
          const s = slashes.length ? slashes[step.at % slashes.length]! : 0;
          if (step.kind === 'encode' && positions.length) url = url.slice(0, p) + HEX(url[p]!, (step as { lower: boolean }).lower) + url.slice(p + 1);
          if (step.kind === 'double') url = `${url.slice(0, s)}//${url.slice(s + 1)}`;
          if (step.kind === 'dot') url = `${url.slice(0, s)}/./${url.slice(s + 1)}`;
          if (step.kind === 'dotdot') url = `${url.slice(0, s)}/zz/../${url.slice(s + 1)}`;
          if (step.kind === 'slash2f' && s > 0) url = `${url.slice(0, s)}%2F${url.slice(s + 1)}`;
          if (step.kind === 'upper' && positions.length) url = url.slice(0, p) + url[p]!.toUpperCase() + url.slice(p + 1);
          if (step.kind === 'trailing') url = `${url}/`;
        }
        const body = ['POST', 'PUT', 'PATCH'].includes(route.method) ? {} : undefined;
        const r = await call(keys[cred], route.method, url, body);
        expect(REFUSED.has(r.status), `${route.method} ${url} [${route.access}] as ${cred}: ${r.status} ${r.raw.slice(0, 120)}`).toBe(true);
      }), { numRuns: 400, seed: Number(process.env.FC_SEED ?? 17) });
    expect(await effects()).toBe(before);
  }, 300_000);
});
