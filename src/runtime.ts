import fs from 'node:fs';
import path from 'node:path';
import { bindAuditKey, reanchorAuditChain } from './audit/audit.repo.ts';
import { checkpointAudit } from './audit/checkpoints.ts';
import { sealClearWebhookSecrets } from './applications/webhook-secrets.ts';
import { restrictTree, restrictUmask } from './storage/file-modes.ts';
import pino, { type Logger } from 'pino';
import { bootstrapOperatorKey, forgetChosenKeyPrefix } from './auth/api-keys.ts';
import { type Clock, systemClock } from './clock.ts';
import type { Config } from './config.ts';
import type { Ctx } from './context.ts';
import { migrate, openDatabase, type DatabaseHandle } from './db/database.ts';
import { createMetrics } from './http/metrics.ts';
import { deriveSecrets, loadMasterKey } from './secrets.ts';
import { createStoredFiles } from './storage/stored-files.repo.ts';
import { importLegacyFiles } from './storage/legacy-import.ts';
import { acquireDataDirLock, type DataDirLock } from './deployment/data-dir-lock.ts';
import { checkMasterKey, checkSharedLocations } from './deployment/guards.ts';
import { appendPending } from './backups/erasure-journal.ts';
import { replayAtStart } from './backups/restore.ts';
import { createServices } from './services.ts';
import { MIGRATIONS } from './domains.ts';
import { createCustomerKeys } from './crypto/customer-keys.ts';
import { createFieldCrypto } from './crypto/field-crypto.ts';
import { openKeyring } from './crypto/keyring.ts';

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
  // Before anything is written: files and directories readable by this user only (also PGlite's own).
  restrictUmask();
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  for (const dir of [config.dataDir, config.backupDir]) {
    const changed = restrictTree(dir);
    if (changed > 0) log.warn({ dir, changed }, 'made files readable by this user only (0600/0700)');
  }
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
    // Start-up guards: the same master key, backup location and keyring as every other instance.
    await checkMasterKey(handle.db, secrets.fingerprint, clock.now());
    const keys = createCustomerKeys(openKeyring(config.keyringDir, secrets.keyringKey));
    await checkSharedLocations(handle.db, config, keys, clock.now());
    const firstKey = await bootstrapOperatorKey(handle.db, config.adminKey, clock.now(), secrets.apiKeyHashKey);
    // Issue 17, once per database and harmless after: the chain keyed and re-anchored, clear
    // webhook secrets sealed, no part of a chosen admin key kept as its display prefix.
    bindAuditKey(handle.db, secrets.auditKey);
    await reanchorAuditChain(handle.db, clock.now());
    await sealClearWebhookSecrets(handle.db, secrets.storedSecretsKey);
    if (config.adminKey) await forgetChosenKeyPrefix(handle.db, config.adminKey, secrets.apiKeyHashKey);
    // The first key epoch starts now if there is none (crypto-shredding).
    await keys.ensureEpoch(handle.db, clock.now());
    const ctx: Ctx = {
      db: handle.db,
      dbKind: handle.kind,
      clock,
      config,
      secrets,
      blobs: createStoredFiles(handle.db, () => clock.now()),
      crypto: createFieldCrypto(keys, secrets.blindIndexKey),
      log,
      metrics: createMetrics(options.withDefaultMetrics ?? true),
    };
    // Before anything serves: re-apply erasures journaled outside the database that it lacks (a restore).
    await replayAtStart(ctx, () => createServices(ctx).registry);
    // Files an older release kept under this instance's data directory move into the database
    // (photos still in clear: the crypto data migration then re-writes them encrypted).
    await importLegacyFiles(ctx.db, ctx.blobs, config.dataDir, log);
    // Journal entries committed but not yet in the shared file (a crash after commit) are appended now.
    await appendPending(ctx.db, config, clock.now()).catch((err: Error) =>
      log.warn({ err: err.message }, 'pending erasure-journal entries not appended yet; retried by the retention job'));
    await checkpointAudit({ db: ctx.db, config, key: secrets.auditKey, now: () => clock.now() }).catch((err: Error) =>
      log.error({ err: err.message }, 'audit checkpoint not written'));
    // PGlite (Emscripten) creates its files 0666 whatever the umask: the 0700 directories above
    // already keep other users out; its files are also brought back to 0600 every minute and at close.
    const sweep = handle.kind === 'pglite' && !options.inMemory
      ? setInterval(() => restrictTree(path.join(config.dataDir, 'pglite')), 60_000).unref() : null;
    return {
      ctx, handle, firstKey, dataDirLock,
      close: async () => {
        if (sweep) clearInterval(sweep);
        await close();
        if (handle.kind === 'pglite' && !options.inMemory) restrictTree(path.join(config.dataDir, 'pglite'));
      },
    };
  } catch (error) {
    await close();
    throw error;
  }
}
