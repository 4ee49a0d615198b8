import { LOCAL_CLI_KEY_ID } from '../src/http/auth.ts';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgDatabase, TEST_DB } from './helpers/runtime.ts';
import { runCli, startServer, type ServerProcess } from './helpers/process.ts';

let ADMIN = '';
let dataDir: string;
let pgDb: Awaited<ReturnType<typeof createPgDatabase>> | null = null;
let env: Record<string, string>;

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-keys-cli-'));
  pgDb = TEST_DB === 'postgres' ? await createPgDatabase() : null;
  env = { LETHE_DATA_DIR: dataDir, ...(pgDb ? { DATABASE_URL: pgDb.url } : {}) };
});
afterAll(async () => {
  await pgDb?.drop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('npx lethe keys list|revoke', () => {
  it('without a server: lists keys (never the key) and revokes one; the last operator key is refused', async () => {
    const first = await runCli(['keys', 'create', '--operator'], env);
    expect(first.code, first.stderr).toBe(0);
    ADMIN = first.stdout.trim();
    const created = await runCli(['keys', 'create', '--operator'], env);
    expect(created.code, created.stderr).toBe(0);
    const key = created.stdout.trim();
    const list = await runCli(['keys', 'list'], env);
    expect(list.code, list.stderr).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines.length).toBe(2);
    expect(list.stdout).not.toContain(key);
    expect(list.stdout).not.toContain(ADMIN);
    const ids = lines.map((l) => l.split(/\s+/)[0]!);
    const revoke = await runCli(['keys', 'revoke', ids[1]!], env);
    expect(revoke.code, revoke.stderr).toBe(0);
    expect((await runCli(['keys', 'list'], env)).stdout).toMatch(new RegExp(`${ids[1]}\\s+operator\\s+revoked`));
    const last = await runCli(['keys', 'revoke', ids[0]!], env);
    expect(last.code).toBe(1);
    expect(last.stderr).toContain('last active operator key');
    expect((await runCli(['keys', 'revoke', 'nope'], env)).code).toBe(2);
  }, 240_000);

  it('while a server serves the database: through the server (embedded) or the shared database (PostgreSQL)', async () => {
    let server: ServerProcess | null = null;
    try {
      server = await startServer({ ...env, LETHE_SCHEDULER: 'false', LETHE_DISPATCHER: 'false' });
      const auth = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };
      const res = await fetch(`${server.url}/v1/api-keys`, { method: 'POST', headers: auth, body: JSON.stringify({ kind: 'operator', label: 'leaked' }) });
      const k = await res.json() as { id: string; key: string };
      expect((await fetch(`${server.url}/v1/settings`, { headers: { authorization: `Bearer ${k.key}` } })).status).toBe(200);

      // No API key needed: on the embedded database the CLI uses the server's local token (lethe.lock).
      const cliEnv = { ...env };
      const list = await runCli(['keys', 'list'], cliEnv);
      expect(list.code, list.stderr).toBe(0);
      expect(list.stdout).toContain(k.id);
      expect(list.stdout).toContain('"leaked"');
      const revoke = await runCli(['keys', 'revoke', k.id], cliEnv);
      expect(revoke.code, revoke.stderr).toBe(0);
      expect((await fetch(`${server.url}/v1/settings`, { headers: { authorization: `Bearer ${k.key}` } })).status).toBe(401);
      // Revoked through the server (embedded: the local CLI actor) or directly (PostgreSQL: the CLI's own process).
      const audit = await (await fetch(`${server.url}/v1/audit-events?type=api_key.revoked`, { headers: auth })).json() as { data: Array<{ subjectId: string; actorKeyId: string | null }> };
      const event = audit.data.find((e) => e.subjectId === k.id);
      expect(event).toBeDefined();
      if (!pgDb) expect(event!.actorKeyId).toBe(LOCAL_CLI_KEY_ID);
    } finally {
      await server?.stop();
    }
  }, 240_000);
});
