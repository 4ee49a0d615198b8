import pino, { type Logger } from 'pino';
import { bootstrapOperatorKey } from './auth/api-keys.ts';
import { type Clock, systemClock } from './clock.ts';
import type { Config } from './config.ts';
import type { Ctx } from './context.ts';
import { migrate, openDatabase, type DatabaseHandle } from './db/database.ts';
import { createMetrics } from './http/metrics.ts';
import { deriveSecrets, loadMasterKey } from './secrets.ts';
import { createStoredFiles } from './storage/stored-files.repo.ts';
import { importLegacyFiles } from './storage/legacy-import.ts';
import { acquireDataDirLock, type DataDirLock } from './deployment/data-dir-lock.ts';
import { checkBackupLocation, checkMasterKey } from './deployment/guards.ts';
import { appendPending } from './backups/erasure-journal.ts';
import { replayAtStart } from './backups/restore.ts';
import { createServices } from './services.ts';
import { MIGRATIONS } from './domains.ts';

export interface Runtime {
  ctx: Ctx;
  handle: DatabaseHandle;
  /** The generated first operator key, when this start created it (printed once). */
  firstKey: string | null;
  /** The embedded database's data-directory lock (null on PostgreSQL and in memory). */
  dataDirLock: DataDirLock | null;
  close(): Promise<void>;
}

export function createLogger(config: Pick<Config, 'logLevel'>): Logger {
  // Request bodies and headers are never logged: they may hold personal data or keys.
  return pino({ level: config.logLevel, redact: ['req.headers.authorization', 'req.body', 'res.body'] });
}

/** Opens the database, applies migrations and bootstraps the first key: everything before serving. */
export async function startRuntime(config: Config, options: {
  clock?: Clock; log?: Logger; inMemory?: boolean; withDefaultMetrics?: boolean; role?: 'server' | 'cli';
} = {}): Promise<Runtime> {
  const log = options.log ?? createLogger(config);
  // The embedded database belongs to one process: refuse a data directory another live process holds.
  const dataDirLock = !config.databaseUrl && !options.inMemory ? acquireDataDirLock(config.dataDir, options.role ?? 'server') : null;
  let handle: DatabaseHandle;
  try {
    handle = await openDatabase({
    ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
    dataDir: config.dataDir,
    ...(options.inMemory ? { inMemory: true } : {}),
    });
  } catch (error) {
    dataDirLock?.release();
    throw error;
  }
  const close = async () => { try { await handle.close(); } finally { dataDirLock?.release(); } };
  try {
    await migrate(handle.db, MIGRATIONS);
    const clock = options.clock ?? systemClock;
    const secrets = deriveSecrets(loadMasterKey(config.masterKey, config.dataDir));
    // Start-up guards: the same master key and the same backup location as every other instance.
    await checkMasterKey(handle.db, secrets.fingerprint, clock.now());
    await checkBackupLocation(handle.db, config, clock.now());
    const firstKey = await bootstrapOperatorKey(handle.db, config.adminKey, clock.now());
    const ctx: Ctx = {
      db: handle.db,
      dbKind: handle.kind,
      clock,
      config,
      secrets,
      blobs: createStoredFiles(handle.db, () => clock.now()),
      log,
      metrics: createMetrics(options.withDefaultMetrics ?? true),
    };
    // Before anything serves: re-apply erasures journaled outside the database that it lacks (a restore).
    await replayAtStart(ctx, () => createServices(ctx).registry);
    // Files an older release kept under this instance's data directory move into the database.
    await importLegacyFiles(ctx.db, ctx.blobs, config.dataDir, log);
    // Journal entries committed but not yet in the shared file (a crash after commit) are appended now.
    await appendPending(ctx.db, config, clock.now()).catch((err: Error) =>
      log.warn({ err: err.message }, 'pending erasure-journal entries not appended yet; retried by the retention job'));
    return { ctx, handle, firstKey, dataDirLock, close };
  } catch (error) {
    await close();
    throw error;
  }
}
