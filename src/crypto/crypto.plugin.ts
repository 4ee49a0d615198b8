import type { Ctx } from '../context.ts';
import { AppError } from '../http/errors.ts';
import type { ServicesCore } from '../services.ts';
import { migrateBatch, migrationDone } from './data-migration.ts';

/**
 * Key lifecycle as part of the daily retention job (runs after the backups task, whose archive
 * destruction it does not depend on): start a new epoch when the current one is keyEpochDays old,
 * re-wrap every customer key under the current epoch, destroy epochs out of use for
 * backupRetentionDays. And, on a database of an earlier release, the data migration in the
 * background (batches while serving) until done.
 */
export function plugCrypto(ctx: Ctx, s: ServicesCore): void {
  const keys = ctx.crypto.keys;
  s.retentionTasks.push({
    name: 'keys',
    async run(at, actorKeyId) {
      const epoch = await keys.ensureEpoch(ctx.db, at, actorKeyId);
      const rewrapped = await keys.rewrap(ctx.db, at);
      const retention = await ctx.db.selectFrom('settings').select('backupRetentionDays').where('id', '=', 1).executeTakeFirstOrThrow();
      const { outOfUse, destroyed } = await keys.destroyUnused(ctx.db, at, retention.backupRetentionDays, actorKeyId);
      let customersEncrypted = 0;
      if (!(await migrationDone(ctx.db))) customersEncrypted = (await migrateBatch(ctx)).customers;
      return { epochStarted: epoch.rotated ? 1 : 0, rewrapped, epochsOutOfUse: outOfUse, epochsDestroyed: destroyed.length, customersEncrypted };
    },
  });

  // SPEC: with the keyring unreachable, deletions are refused with 503 (first of all steps).
  s.deletionSteps.unshift({
    name: 'keyring',
    phase: 'before',
    async run() {
      if (!keys.keyring.reachable()) throw new AppError('unavailable', 'The keyring (LETHE_KEYRING_DIR) is not reachable: deletion refused; retry when it is back');
      return null;
    },
  });

  let stopped = false;
  let running: Promise<void> | null = null;
  s.background.push({
    name: 'data-encryption',
    start() {
      running = (async () => {
        while (!stopped && !(await migrationDone(ctx.db))) {
          const p = await migrateBatch(ctx);
          if (p.done) break;
          await new Promise((r) => setTimeout(r, 50)); // leave room for requests between batches
        }
      })().catch((err: Error) => ctx.log.warn({ err: err.message }, 'data encryption migration paused; the retention job resumes it'));
    },
    async stop() { stopped = true; await running; },
  });
}
