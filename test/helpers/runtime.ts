import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, InjectOptions } from 'fastify';
import pg from 'pg';
import pino from 'pino';
import { inject } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { fakeClock, type FakeClock } from '../../src/clock.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import type { Ctx } from '../../src/context.ts';
import { startRuntime } from '../../src/runtime.ts';
import { createServices, type Services } from '../../src/services.ts';
import type { ReleaseFixture } from './release-fixture.ts';

export const TEST_DB = (process.env.LETHE_TEST_DB ?? 'pglite') as 'pglite' | 'postgres';
/** The postgres project's server, chosen once per run (test/helpers/pg-server.ts: env URL, 5432, or embedded 18). */
export const PG_ADMIN_URL = (TEST_DB === 'postgres' ? inject('lethePg')?.url : undefined)
  ?? process.env.LETHE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A fresh PostgreSQL database for one test file; dropped by the returned function. */
export async function createPgDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `lethe_t_${crypto.randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface TestEnv {
  app: FastifyInstance;
  ctx: Ctx;
  services: Services;
  clock: FakeClock;
  config: Config;
  operatorKey: string;
  dataDir: string;
  databaseUrl: string | undefined;
  close(): Promise<void>;
}

export const ADMIN_KEY = 'lethe_op_test_admin_key_0123456789abcdef';

/** A real server (inject or listen) on a fresh database of the file's kind, with a fake clock. */
export async function createTestEnv(options: {
  env?: Record<string, string>; clockStart?: string;
  /** Serve a copy of a landed release's database (test/helpers/release-fixture.ts) instead of a fresh one. */
  fixture?: ReleaseFixture;
  /** PGlite: keep the database in files under the data directory (default: in memory). */
  onDisk?: boolean;
} = {}): Promise<TestEnv> {
  const fixture = options.fixture;
  const dataDir = fixture?.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-test-'));
  const pgDb = fixture ? null : TEST_DB === 'postgres' ? await createPgDatabase() : null;
  const config = loadConfig({
    LETHE_DATA_DIR: dataDir,
    LETHE_ADMIN_KEY: ADMIN_KEY,
    LETHE_WEBHOOK_ALLOW_PRIVATE: 'true',
    LETHE_SCHEDULER: 'false',
    LETHE_DISPATCHER: 'false',
    LOG_LEVEL: 'silent',
    ...(pgDb ? { DATABASE_URL: pgDb.url } : {}),
    ...fixture?.env,
    ...options.env,
  });
  const clock = fakeClock(options.clockStart ?? '2026-03-02T10:00:00Z');
  const runtime = await startRuntime(config, {
    clock, log: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), inMemory: !fixture && !options.onDisk, withDefaultMetrics: false,
  });
  const services = createServices(runtime.ctx);
  const app = await buildApp(runtime.ctx, services);
  return {
    app, ctx: runtime.ctx, services, clock, config, operatorKey: fixture?.manifest.operatorKey ?? ADMIN_KEY, dataDir,
    databaseUrl: pgDb?.url ?? fixture?.databaseUrl,
    close: async () => {
      await Promise.all(services.background.map((b) => b.stop()));
      await app.close();
      await runtime.close();
      await pgDb?.drop();
      await fixture?.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
      fs.rmSync(config.keyringDir, { recursive: true, force: true });
    },
  };
}

export interface Response<T = any> { status: number; body: T; headers: Record<string, unknown>; raw: string }

/** A small client over Fastify inject that sends a bearer key and parses JSON. */
export function client(app: FastifyInstance, key: string | null) {
  async function call<T = any>(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response<T>> {
    const opts: InjectOptions = { method: method as InjectOptions['method'], url, headers: { ...headers } };
    if (key !== null) opts.headers!.authorization = `Bearer ${key}`;
    if (body !== undefined) {
      if (Buffer.isBuffer(body) || typeof body === 'string') opts.payload = body;
      else { opts.payload = JSON.stringify(body); opts.headers!['content-type'] = 'application/json'; }
    }
    const res = await app.inject(opts);
    let parsed: unknown = res.body;
    if (String(res.headers['content-type'] ?? '').includes('json') && res.body.length > 0) parsed = JSON.parse(res.body);
    return { status: res.statusCode, body: parsed as T, headers: res.headers, raw: res.body };
  }
  return {
    call,
    get: <T = any>(url: string, headers?: Record<string, string>) => call<T>('GET', url, undefined, headers),
    post: <T = any>(url: string, body?: unknown, headers?: Record<string, string>) => call<T>('POST', url, body ?? {}, headers),
    patch: <T = any>(url: string, body?: unknown, headers?: Record<string, string>) => call<T>('PATCH', url, body, headers),
    put: <T = any>(url: string, body: unknown, headers?: Record<string, string>) => call<T>('PUT', url, body, headers),
    del: <T = any>(url: string, headers?: Record<string, string>) => call<T>('DELETE', url, undefined, headers),
  };
}
export type Client = ReturnType<typeof client>;
