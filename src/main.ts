import { buildApp } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { startRuntime } from './runtime.ts';
import { restrictUmask } from './storage/file-modes.ts';
import { createServices } from './services.ts';
import { allowLocalCliToken } from './http/auth.ts';
import { DataDirLocked } from './deployment/data-dir-lock.ts';
import { holdServingLock, StartupRefusal, type SessionLock } from './deployment/guards.ts';

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
  let runtime;
  let servingLock: SessionLock | null = null;
  try {
    runtime = await startRuntime(config, { role: 'server' });
    // PostgreSQL: hold the serving lock (shared) while serving, so a restore refuses meanwhile.
    if (config.databaseUrl) servingLock = await holdServingLock(config.databaseUrl);
  } catch (error) {
    if (error instanceof StartupRefusal || error instanceof DataDirLocked) {
      // Exit 3: a start-up refusal needs a human (1 is any other failure to start, 2 bad configuration).
      console.error(`lethe: refusing to start: ${error.message}`);
      await runtime?.close();
      process.exit(3);
    }
    throw error;
  }
  const { ctx } = runtime;
  if (runtime.firstKey) {
    // Printed once, on the first start with an empty database; only its hash is stored.
    process.stdout.write(`\nFirst operator API key (shown once, store it now):\n\n  ${runtime.firstKey}\n\n`);
  }
  const services = createServices(ctx);
  const app = await buildApp(ctx, services);
  await app.listen({ port: config.port, host: config.host });
  if (runtime.dataDirLock) {
    // The embedded database: the CLI on this machine asks this server (src/cli/server-client.ts).
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    allowLocalCliToken(app, runtime.dataDirLock.announce(port, config.host));
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
    await servingLock?.release();
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
