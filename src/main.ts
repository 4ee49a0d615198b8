import { buildApp } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { startRuntime } from './runtime.ts';
import { restrictUmask } from './storage/file-modes.ts';
import { createServices } from './services.ts';
import { removeServerInfo, writeServerInfo } from './auth/keys.cli.ts';

/** `npm start`: serve the API and console, and run the scheduler and dispatcher in this process. */
export async function serve(): Promise<void> {
  restrictUmask(); // before any file is written (PGlite, master key, journal, backups)
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`lethe: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const runtime = await startRuntime(config);
  const { ctx } = runtime;
  if (runtime.firstKey) {
    // Printed once, on the first start with an empty database; only its hash is stored.
    process.stdout.write(`\nFirst operator API key (shown once, store it now):\n\n  ${runtime.firstKey}\n\n`);
  }
  const services = createServices(ctx);
  const app = await buildApp(ctx, services);
  const address = await app.listen({ port: config.port, host: config.host });
  // Tells the CLI (lethe keys …) that this process holds the data directory, and where to reach it.
  if (!config.databaseUrl) {
    const url = new URL(address);
    if (url.hostname === '0.0.0.0' || url.hostname === '[::]') url.hostname = '127.0.0.1';
    writeServerInfo(config, { pid: process.pid, url: url.origin, startedAt: new Date().toISOString() });
  }
  ctx.log.info({ port: config.port, database: ctx.dbKind }, 'lethe listening');
  for (const job of services.background) job.start();

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    ctx.log.info({ signal }, 'shutting down');
    await Promise.all(services.background.map((job) => job.stop()));
    await app.close();
    if (!config.databaseUrl) removeServerInfo(config);
    await runtime.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  serve().catch((error: Error) => {
    console.error(`lethe: failed to start: ${error.message}`);
    process.exit(1);
  });
}
