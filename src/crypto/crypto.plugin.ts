import * as m0010 from '../db/migrations/0010-crypto-shredding.ts';
import { AppError } from '../http/errors.ts';
import type { DomainPlugin } from '../plugin/registry.ts';
import { SETTINGS_SECTIONS, readSettingsSection } from '../settings/settings.repo.ts';
import { migrateBatch, migrationDone } from './data-migration.ts';

/**
 * Crypto-shredding (docs/encryption.md): personal values are encrypted under per-customer keys
 * wrapped by key-epoch keys (the keyring, opened by runtime.ts into `ctx.crypto`). This domain owns
 * migration 0010, the `keyEpochDays` setting, the keyring check that refuses deletions while the
 * keyring is unreachable, the key lifecycle in the daily retention job, and the background data
 * migration of a database written by an earlier release.
 */
export const cryptoPlugin: DomainPlugin = {
  name: 'crypto',
  migrations: { '0010-crypto-shredding': m0010 },
  plug(ctx, r) {
    const keys = ctx.crypto.keys;
    r.settingsSection({ fields: SETTINGS_SECTIONS.crypto });

    // SPEC: with the keyring unreachable, deletions are refused with 503 (first of all steps).
    r.deletionStep<null>({
      name: 'keyring',
      phase: 'before',
      order: 0,
      async run() {
        if (!keys.keyring.reachable()) throw new AppError('unavailable', 'The keyring (LETHE_KEYRING_DIR) is not reachable: deletion refused; retry when it is back');
        return null;
      },
    });

    /**
     * Key lifecycle as part of the daily retention job (after the backups task: DOMAINS order):
     * start a new epoch when the current one is keyEpochDays old, re-wrap every customer key under
     * the current epoch, destroy epochs out of use for backupRetentionDays. And, on a database of
     * an earlier release, a batch of the data migration until it is done.
     */
    r.retentionTask({
      name: 'keys',
      async run(at, actorKeyId) {
        const epoch = await keys.ensureEpoch(ctx.db, at, actorKeyId);
        const rewrapped = await keys.rewrap(ctx.db, at);
        const { backupRetentionDays } = await readSettingsSection(ctx.db, 'backups');
        const { outOfUse, destroyed } = await keys.destroyUnused(ctx.db, at, backupRetentionDays, actorKeyId);
        let customersEncrypted = 0;
        if (!(await migrationDone(ctx.db))) customersEncrypted = (await migrateBatch(ctx)).customers;
        return { epochStarted: epoch.rotated ? 1 : 0, rewrapped, epochsOutOfUse: outOfUse, epochsDestroyed: destroyed.length, customersEncrypted };
      },
    });

    let stopped = false;
    let running: Promise<void> | null = null;
    r.background({
      name: 'data-encryption',
      start() {
        running = (async () => {
          while (!stopped && !(await migrationDone(ctx.db))) {
            const p = await migrateBatch(ctx);
            if (p.done) break;
            await new Promise((resolve) => setTimeout(resolve, 50)); // leave room for requests between batches
          }
        })().catch((err: Error) => ctx.log.warn({ err: err.message }, 'data encryption migration paused; the retention job resumes it'));
      },
      async stop() { stopped = true; await running; },
    });
  },
};
