// The OpenAPI document is fit for client generators: every route has a stable camelCase
// operationId, `servers` is set, every operation documents a 4xx, and Redocly's recommended
// rules report no error. Redocly runs offline (telemetry and update check off).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeTableOf } from '../src/http/auth.ts';
import { ROOT } from './helpers/process.ts';
import { client, createTestEnv, type TestEnv } from './helpers/runtime.ts';

type Op = { operationId?: string; responses: Record<string, unknown> };
let env: TestEnv;
let doc: { servers?: Array<{ url: string }>; paths: Record<string, Record<string, Op>> };

beforeAll(async () => {
  env = await createTestEnv();
  doc = (await client(env.app, null).get('/openapi.json')).body;
});
afterAll(async () => env?.close());

const toOpenApi = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
const operations = () => Object.entries(doc.paths).flatMap(([p, item]) =>
  Object.entries(item).filter(([m]) => METHODS.includes(m)).map(([m, op]) => ({ name: `${m.toUpperCase()} ${p}`, op })));

describe('OpenAPI document for generated clients', () => {
  it('every registered route has a unique camelCase operationId (taken from the live route table)', () => {
    const table = routeTableOf(env.app).filter((r) => !r.hidden);
    expect(table.length).toBeGreaterThan(40);
    const seen = new Map<string, string>();
    for (const route of table) {
      const op = doc.paths[toOpenApi(route.url)]?.[route.method.toLowerCase()];
      expect(op, `${route.method} ${route.url} missing from /openapi.json`).toBeDefined();
      const id = op!.operationId;
      expect(id, `${route.method} ${route.url} has no operationId (add schema.operationId to the route)`).toBeTypeOf('string');
      expect(id, `${route.method} ${route.url}: operationId must be camelCase`).toMatch(/^[a-z][a-zA-Z0-9]*$/);
      expect(seen.get(id!), `operationId ${id} is used twice`).toBeUndefined();
      seen.set(id!, `${route.method} ${route.url}`);
    }
  });

  it('names operations as partners expect (stable names a generated client calls)', () => {
    const ids = new Set(operations().map((o) => o.op.operationId));
    for (const id of ['deleteCustomer', 'confirmDataDeletion', 'listDataDeletions', 'listDataDeletionConfirmations',
      'listCustomerLicenses', 'getApplication', 'updateApplication', 'rotateApplicationSecret', 'listApplicationDeliveries']) {
      expect(ids.has(id), id).toBe(true);
    }
  });

  it('sets servers and documents a 4xx response on every operation', () => {
    expect(doc.servers?.length).toBeGreaterThan(0);
    for (const { name, op } of operations()) {
      expect(Object.keys(op.responses).some((c) => /^4\d\d$/.test(c)), `${name} documents no 4xx response`).toBe(true);
    }
  });

  it('an unknown query parameter on an ops route is the documented 400', async () => {
    const r = await client(env.app, null).get('/healthz?verbose=1');
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('validation_failed');
  });

  it('@redocly/cli lint (recommended rules) reports no error on the served document', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-lint-'));
    try {
      const file = path.join(dir, 'openapi.json');
      fs.writeFileSync(file, JSON.stringify(doc));
      const cli = path.join(ROOT, 'node_modules', '@redocly', 'cli', 'bin', 'cli.js');
      expect(fs.existsSync(cli), '@redocly/cli is not installed (npm install)').toBe(true);
      const r = spawnSync(process.execPath, [cli, 'lint', '--extends', 'recommended', '--format', 'json', file], {
        cwd: dir, encoding: 'utf8', timeout: 120_000,
        env: { PATH: process.env.PATH ?? '', HOME: dir, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', CI: 'true' },
      });
      const out = JSON.parse(r.stdout) as { totals: { errors: number }; problems: Array<{ ruleId: string; severity: string; message: string }> };
      const errors = out.problems.filter((p) => p.severity === 'error');
      expect(errors, JSON.stringify(errors, null, 2)).toEqual([]);
      expect(out.totals.errors).toBe(0);
      const generatorWarnings = out.problems.filter((p) => ['operation-operationId', 'operation-4xx-response', 'operation-operationId-unique'].includes(p.ruleId));
      expect(generatorWarnings).toEqual([]);
      expect(r.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
