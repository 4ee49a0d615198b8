import type { Ctx } from '../context.ts';
import { crashPoint } from './crash-points.ts';
import type { Db } from '../db/database.ts';
import { readSettingsSection } from '../settings/settings.repo.ts';
import * as repo from './deployment.repo.ts';
import { errorCodeOf } from '../jobs/job-runs.ts';
import { instantOf, isValidTimeZone, localDay } from '../notifications/schedule.ts';
import { createDatabaseBackup, pruneDatabaseBackups } from '../backups/database-backup.ts';

const STALE_CLAIM_MS = 3_600_000;

/**
 * Claims one run of a scheduled job for a slot (e.g. a day) in job_runs: exactly one instance
 * wins; the claim is the run's record (`running`, then its outcome, listed by GET /v1/job-runs). A claim left unfinished for an hour (its instance died mid-run) may be taken over.
 */
export async function claimRun(db: Db, job: string, slot: string, instanceId: string, at: Date): Promise<boolean> {
  return repo.claimRun(db, job, slot, instanceId, at, new Date(at.getTime() - STALE_CLAIM_MS));
}

export const finishRun = repo.finishRun;

/**
 * Scheduled database backups: with settings.databaseBackupEnabled, once per local day of
 * settings.notificationTimeZone at settings.databaseBackupTime (or the first check after it,
 * e.g. after downtime), exactly one instance takes a backup into LETHE_BACKUP_DIR and prunes
 * the backups older than backupRetentionDays. Both are audited (backup.created, backup.pruned).
 * Checked right after start (a restarted instance catches up at once) and every minute.
 * An instance killed mid-backup leaves its claim unfinished and at most a `.lbk.tmp` file (never
 * listed or restored); an hour later another instance takes the slot over, and the prune removes
 * the stale partial file.
 */
export function createBackupScheduler(ctx: Ctx, options: { tickMs?: number } = {}) {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<unknown> | null = null;

  async function tick(): Promise<{ ran: boolean; day: string | null }> {
    const s = await readSettingsSection(ctx.db, 'deployment');
    if (!s.databaseBackupEnabled) return { ran: false, day: null };
    // The local day is the notifications' one (their time zone).
    const { notificationTimeZone } = await readSettingsSection(ctx.db, 'notifications');
    const zone = isValidTimeZone(notificationTimeZone) ? notificationTimeZone : 'UTC';
    const now = ctx.clock.now();
    const day = localDay(now, zone);
    if (now.getTime() < instantOf(day, s.databaseBackupTime, zone).getTime()) return { ran: false, day: null };
    if (!await claimRun(ctx.db, 'database-backup', day, ctx.config.instanceId, now)) {
      ctx.log.debug({ job: 'database-backup', slot: day }, 'scheduled database backup: slot already claimed');
      return { ran: false, day: null };
    }
    try {
      // test-only (NODE_ENV=test): SIGKILL with the slot claimed and the backup file half written
      const r = await createDatabaseBackup(ctx, null, { afterTable: () => crashPoint('scheduled-backup') });
      const pruned = await pruneDatabaseBackups(ctx, ctx.clock.now(), null);
      await finishRun(ctx.db, 'database-backup', day, ctx.clock.now(), 'succeeded',
        { result: { backupsCreated: 1, tables: r.header.tables.length, backupsPruned: pruned.pruned.length, backupsKept: pruned.kept,
          partialFilesRemoved: pruned.partialRemoved.length } });
      ctx.log.info({ job: 'database-backup', backupId: r.header.id, pruned: pruned.pruned.length, partialRemoved: pruned.partialRemoved.length },
        'scheduled database backup taken');
    } catch (error) {
      await finishRun(ctx.db, 'database-backup', day, ctx.clock.now(), 'failed', { error: errorCodeOf(error) });
      ctx.log.error({ job: 'database-backup', err: (error as Error).message }, 'scheduled database backup failed');
    }
    return { ran: true, day };
  }

  return {
    name: 'backup-scheduler',
    tick,
    start() {
      if (timer) return;
      const safe = () => {
        if (running || !timer) return;
        running = tick().catch((e: Error) => ctx.log.error({ err: e.message }, 'backup scheduler tick failed')).finally(() => { running = null; });
      };
      timer = setInterval(safe, options.tickMs ?? 60_000);
      timer.unref();
      setImmediate(safe);
    },
    async stop() { if (timer) clearInterval(timer); timer = null; await running; },
  };
}
