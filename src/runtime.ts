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
import { createFileBlobStore } from './storage/blob-store.ts';
import { replayAtStart } from './backups/restore.ts';
import { createServices } from './services.ts';
import { MIGRATIONS } from './domains.ts';
import { processPendingBlobDeletions } from './erasure/photo-cleanup.ts';
import { createCustomerKeys } from './crypto/customer-keys.ts';
import { createFieldCrypto } from './crypto/field-crypto.ts';
import { openKeyring } from './crypto/keyring.ts';

export interface Runtime {
  ctx: Ctx;
  handle: DatabaseHandle;
  /** The generated first operator key, when this start created it (printed once). */
  firstKey: string | null;
  close(): Promise<void>;
}

export function createLogger(config: Pick<Config, 'logLevel'>): Logger {
  // Request bodies and headers are never logged: they may hold personal data or keys.
  return pino({ level: config.logLevel, redact: ['req.headers.authorization', 'req.body', 'res.body'] });
}

/** Opens the database, applies migrations and bootstraps the first key: everything before serving. */
export async function startRuntime(config: Config, options: {
  clock?: Clock; log?: Logger; inMemory?: boolean; withDefaultMetrics?: boolean;
} = {}): Promise<Runtime> {
  const log = options.log ?? createLogger(config);
  // Before anything is written: files and directories readable by this user only (also PGlite's own).
  restrictUmask();
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  for (const dir of [config.dataDir, config.backupDir]) {
    const changed = restrictTree(dir);
    if (changed > 0) log.warn({ dir, changed }, 'made files readable by this user only (0600/0700)');
  }
  const handle = await openDatabase({
    ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
    dataDir: config.dataDir,
    ...(options.inMemory ? { inMemory: true } : {}),
  });
  try {
    await migrate(handle.db, MIGRATIONS);
    const clock = options.clock ?? systemClock;
    const secrets = deriveSecrets(loadMasterKey(config.masterKey, config.dataDir));
    const firstKey = await bootstrapOperatorKey(handle.db, config.adminKey, clock.now(), secrets.apiKeyHashKey);
    // Issue 17, once per database and harmless after: the chain keyed and re-anchored, clear
    // webhook secrets sealed, no part of a chosen admin key kept as its display prefix.
    bindAuditKey(handle.db, secrets.auditKey);
    await reanchorAuditChain(handle.db, clock.now());
    await sealClearWebhookSecrets(handle.db, secrets.storedSecretsKey);
    if (config.adminKey) await forgetChosenKeyPrefix(handle.db, config.adminKey, secrets.apiKeyHashKey);
    // The keyring (epoch keys, outside the database): bound to this database at first start,
    // checked at every start; the first epoch starts now if there is none.
    const keys = createCustomerKeys(openKeyring(config.keyringDir, secrets.keyringKey));
    await keys.checkKeyring(handle.db);
    await keys.ensureEpoch(handle.db, clock.now());
    const ctx: Ctx = {
      db: handle.db,
      dbKind: handle.kind,
      clock,
      config,
      secrets,
      blobs: createFileBlobStore(path.join(config.dataDir, 'blobs')),
      crypto: createFieldCrypto(keys, secrets.blindIndexKey),
      log,
      metrics: createMetrics(options.withDefaultMetrics ?? true),
    };
    // Before anything serves: re-apply erasures journaled outside the database that it lacks (a restore).
    await replayAtStart(ctx, () => createServices(ctx).registry);
    // Files whose deletion was committed but not finished (a crash after commit) are removed now.
    await processPendingBlobDeletions(ctx.db, ctx.blobs, log).catch((err: Error) =>
      log.warn({ err: err.message }, 'pending file deletions not finished; retried by the retention job'));
    await checkpointAudit({ db: ctx.db, config, key: secrets.auditKey, now: () => clock.now() }).catch((err: Error) =>
      log.error({ err: err.message }, 'audit checkpoint not written'));
    // PGlite (Emscripten) creates its files 0666 whatever the umask: the 0700 directories above
    // already keep other users out; its files are also brought back to 0600 every minute and at close.
    const sweep = handle.kind === 'pglite' && !options.inMemory
      ? setInterval(() => restrictTree(path.join(config.dataDir, 'pglite')), 60_000).unref() : null;
    return {
      ctx, handle, firstKey,
      close: async () => {
        if (sweep) clearInterval(sweep);
        await handle.close();
        if (handle.kind === 'pglite' && !options.inMemory) restrictTree(path.join(config.dataDir, 'pglite'));
      },
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}
