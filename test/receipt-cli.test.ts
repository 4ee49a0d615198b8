import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { startRuntime } from '../src/runtime.ts';
import { createServices } from '../src/services.ts';
import { client, createPgDatabase, TEST_DB } from './helpers/runtime.ts';
import { runCli } from './helpers/process.ts';
import { createCustomer } from './helpers/fixtures.ts';

// `npx lethe receipt-keys rotate` and `npx lethe receipt verify`, run as the subprocesses users run.
let dataDir: string;
let pgDb: Awaited<ReturnType<typeof createPgDatabase>> | null = null;
let cliEnv: Record<string, string>;
const ADMIN = 'lethe_op_receipt_cli_admin_key_0123456789';

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-receipt-cli-'));
  pgDb = TEST_DB === 'postgres' ? await createPgDatabase() : null;
  cliEnv = { LETHE_DATA_DIR: dataDir, LETHE_ADMIN_KEY: ADMIN, ...(pgDb ? { DATABASE_URL: pgDb.url } : {}) };
});
afterAll(async () => {
  await pgDb?.drop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('npx lethe receipt-keys / receipt verify', () => {
  it('rotates the signing key without touching the master key; a downloaded receipt verifies offline, an altered one does not', async () => {
    const first = await runCli(['receipt-keys', 'rotate'], cliEnv);
    expect(first.code, first.stderr).toBe(0);
    const second = await runCli(['receipt-keys', 'rotate'], cliEnv);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain(`retired ${first.stdout.trim()}`);
    const masterBefore = fs.readFileSync(path.join(dataDir, 'master.key'), 'utf8');

    const config = loadConfig({ ...cliEnv, LOG_LEVEL: 'silent', LETHE_SCHEDULER: 'false', LETHE_DISPATCHER: 'false' });
    const runtime = await startRuntime(config, { log: pino({ level: 'silent' }), withDefaultMetrics: false });
    const app = await buildApp(runtime.ctx, createServices(runtime.ctx));
    let signedFile = '';
    let keysFile = '';
    try {
      const api = client(app, ADMIN);
      const c = await createCustomer(api);
      expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
      const signed = await api.get(`/v1/deletions/${c.id}/signed`);
      expect(signed.body.keyId).toBe(second.stdout.trim());
      const keys = await client(app, null).get('/v1/receipt-keys');
      expect(keys.body.keys.map((k: { keyId: string }) => k.keyId)).toEqual([first.stdout.trim(), second.stdout.trim()]);
      signedFile = path.join(dataDir, 'signed.json');
      keysFile = path.join(dataDir, 'keys.json');
      fs.writeFileSync(signedFile, JSON.stringify(signed.body));
      fs.writeFileSync(keysFile, JSON.stringify(keys.body));
    } finally {
      await app.close();
      await runtime.close();
    }
    expect(fs.readFileSync(path.join(dataDir, 'master.key'), 'utf8')).toBe(masterBefore);

    // Offline: no DATABASE_URL, no data directory needed.
    const ok = await runCli(['receipt', 'verify', signedFile, '--keys', keysFile], {});
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^valid: customer /);
    const doc = JSON.parse(fs.readFileSync(signedFile, 'utf8'));
    const publicKey = JSON.parse(fs.readFileSync(keysFile, 'utf8')).keys[1].publicKey;
    fs.writeFileSync(signedFile, JSON.stringify({ ...doc, receipt: doc.receipt.replace(/"deletedAt":"(\d)/, (_m: string, d: string) => `"deletedAt":"${(Number(d) + 1) % 10}`) }));
    const bad = await runCli(['receipt', 'verify', signedFile, '--public-key', publicKey], {});
    expect(bad.code, bad.stderr).toBe(1);
    expect(bad.stderr).toContain('INVALID');
  }, 120_000);
});
