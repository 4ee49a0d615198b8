// Prints the served OpenAPI document (GET /openapi.json of a server on an in-memory PGlite database).
// `npm run openapi:dump > openapi.json`; packages/client's `npm run generate` uses it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { startRuntime } from '../src/runtime.ts';
import { createServices } from '../src/services.ts';

export async function servedOpenApi(): Promise<unknown> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-openapi-'));
  const config = loadConfig({
    LETHE_DATA_DIR: dataDir, LETHE_ADMIN_KEY: 'lethe_op_openapi_dump_0123456789abcdef',
    LETHE_SCHEDULER: 'false', LETHE_DISPATCHER: 'false', LOG_LEVEL: 'silent',
  });
  const runtime = await startRuntime(config, { log: pino({ level: 'silent' }), inMemory: true, withDefaultMetrics: false });
  const services = createServices(runtime.ctx);
  const app = await buildApp(runtime.ctx, services);
  try {
    const res = await app.inject({ method: 'GET', url: '/openapi.json' });
    return JSON.parse(res.body);
  } finally {
    await Promise.all(services.background.map((b) => b.stop()));
    await app.close();
    await runtime.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(`${JSON.stringify(await servedOpenApi(), null, 2)}\n`);
}
