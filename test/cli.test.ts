import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { MIGRATIONS } from '../src/domains.ts';
import { startRuntime } from '../src/runtime.ts';
import { createServices } from '../src/services.ts';
import { client, createPgDatabase, TEST_DB } from './helpers/runtime.ts';
import { runCli } from './helpers/process.ts';

// `npx lethe …` runs bin/lethe.mjs: these tests run exactly that, as subprocesses, against a
// data directory (and, on the postgres project, a database) of their own.
let dataDir: string;
let pgDb: Awaited<ReturnType<typeof createPgDatabase>> | null = null;
let cliEnv: Record<string, string>;

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-cli-'));
  pgDb = TEST_DB === 'postgres' ? await createPgDatabase() : null;
  cliEnv = { LETHE_DATA_DIR: dataDir, ...(pgDb ? { DATABASE_URL: pgDb.url } : {}) };
});
afterAll(async () => {
  await pgDb?.drop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** Opens the same database in this process (after the CLI exited: PGlite has one writer) and serves it. */
async function withApp<T>(fn: (app: Awaited<ReturnType<typeof buildApp>>, db: Awaited<ReturnType<typeof startRuntime>>['ctx']['db']) => Promise<T>) {
  const config = loadConfig({ ...cliEnv, LOG_LEVEL: 'silent', LETHE_SCHEDULER: 'false', LETHE_DISPATCHER: 'false' });
  const runtime = await startRuntime(config, { log: pino({ level: 'silent' }), withDefaultMetrics: false });
  const services = createServices(runtime.ctx);
  const app = await buildApp(runtime.ctx, services);
  try {
    return await fn(app, runtime.ctx.db);
  } finally {
    await app.close();
    await runtime.close();
  }
}

describe('npx lethe', () => {
  it('help lists the commands', async () => {
    const r = await runCli(['--help'], cliEnv);
    expect(r.code).toBe(0);
    for (const c of ['serve', 'migrate', 'keys create --operator', 'keys create --application']) expect(r.stdout).toContain(c);
  });

  it('migrate applies every migration, then has nothing to do', async () => {
    const first = await runCli(['migrate'], cliEnv);
    expect(first.code, first.stderr).toBe(0);
    for (const name of Object.keys(MIGRATIONS)) expect(first.stdout).toContain(name);
    const again = await runCli(['migrate'], cliEnv);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('up to date');
  }, 120_000);

  it('keys create --operator prints one working operator key, once, on stdout', async () => {
    const r = await runCli(['keys', 'create', '--operator'], cliEnv);
    expect(r.code, r.stderr).toBe(0);
    const key = r.stdout.trim();
    expect(key).toMatch(/^lethe_op_[A-Za-z0-9_-]{40,}$/);
    expect(r.stderr).not.toContain(key);
    await withApp(async (app, db) => {
      // On a database without keys, the CLI's key is the only one: no unseen key was generated alongside.
      expect(await db.selectFrom('apiKeys').select('id').execute()).toHaveLength(1);
      expect((await client(app, key).get('/v1/customers')).status).toBe(200);
      const audit = await client(app, key).get('/v1/audit-events?type=api_key.created');
      expect(audit.body.data).toHaveLength(1);
      expect(audit.raw).not.toContain(key);
    });
    fs.writeFileSync(path.join(dataDir, 'operator.key'), key);
  }, 120_000);

  it('keys create --application <id>... prints an application key scoped to those applications', async () => {
    const operatorKey = fs.readFileSync(path.join(dataDir, 'operator.key'), 'utf8');
    const [a, b] = await withApp(async (app) => {
      const api = client(app, operatorKey);
      return [(await api.post('/v1/applications', { name: 'cli-a' })).body.id, (await api.post('/v1/applications', { name: 'cli-b' })).body.id] as string[];
    });
    const one = await runCli(['keys', 'create', '--application', a!], cliEnv);
    expect(one.code, one.stderr).toBe(0);
    const two = await runCli(['keys', 'create', '--application', a!, b!], cliEnv);
    expect(two.code, two.stderr).toBe(0);
    const keyOne = one.stdout.trim();
    const keyTwo = two.stdout.trim();
    expect(keyOne).toMatch(/^lethe_app_/);
    await withApp(async (app, db) => {
      // An application key is refused on operator routes (403), so it is known and of the right kind.
      expect((await client(app, keyOne).get('/v1/customers')).status).toBe(403);
      const rows = await db.selectFrom('apiKeys').innerJoin('apiKeyApplications', 'apiKeyApplications.apiKeyId', 'apiKeys.id')
        .select(['apiKeys.id', 'apiKeys.kind', 'apiKeyApplications.applicationId']).where('apiKeys.kind', '=', 'application').execute();
      const byKey = new Map<string, string[]>();
      for (const r of rows) byKey.set(r.id, [...(byKey.get(r.id) ?? []), r.applicationId].sort());
      expect([...byKey.values()].sort((x, y) => x.length - y.length)).toEqual([[a], [a, b].sort()]);
      const text = JSON.stringify(await db.selectFrom('apiKeys').selectAll().execute());
      expect(text).not.toContain(keyOne);
      expect(text).not.toContain(keyTwo);
    });
  }, 180_000);

  it('refuses bad arguments with exit code 2 and prints no key', async () => {
    for (const args of [
      ['keys', 'create'], ['keys', 'create', '--operator', '--application', 'x'], ['keys', 'create', '--application'],
      ['keys', 'create', '--application', '00000000-0000-4000-8000-000000000000'],
      ['no-such-command'],
    ]) {
      const r = await runCli(args, cliEnv);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).not.toMatch(/lethe_(op|app)_/);
    }
  }, 180_000);

  it('a bad configuration is reported without a stack trace', async () => {
    const r = await runCli(['migrate'], { ...cliEnv, DATABASE_URL: 'mysql://nope' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('DATABASE_URL');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
