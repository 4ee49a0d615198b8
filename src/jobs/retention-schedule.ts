import type { Ctx } from '../context.ts';
import type { Db } from '../db/database.ts';
import { idempotencyRetentionMs } from '../http/idempotency.ts';
import { purgeBefore } from '../http/idempotency.repo.ts';
import type { RetentionTask } from './jobs.ts';

/** Stored idempotent responses are replayed for settings.idempotencyRetentionHours (default 24), then deleted. */
export function idempotencyPurgeTask(db: Db): RetentionTask {
  return {
    name: 'idempotency-keys',
    async run(at) {
      const cutoff = new Date(at.getTime() - await idempotencyRetentionMs(db));
      return { deleted: await purgeBefore(db, cutoff) };
    },
  };
}

const CHECK_EVERY_MS = 60_000;
const DAY_MS = 24 * 3600_000;

/**
 * Runs the retention job once a day per process: first a minute after start (so a server that
 * was down at its usual time catches up), then every 24 hours of the injected clock. Every
 * retention task is idempotent, so several instances running it is harmless. `runRetention`
 * runs it through the job-run record (a `scheduled` run).
 */
export function retentionScheduler(ctx: Ctx, runRetention: () => Promise<unknown>) {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<unknown> | null = null;
  let lastRun = ctx.clock.now().getTime() - DAY_MS + CHECK_EVERY_MS;
  /** Starts the run when it is due (tests call it with the injected clock); resolves when that run ended. */
  const tick = async (): Promise<boolean> => {
    if (running || ctx.clock.now().getTime() - lastRun < DAY_MS) return false;
    lastRun = ctx.clock.now().getTime();
    running = runRetention()
      .then((result) => ctx.log.info({ job: 'retention', result }, 'retention job ran'))
      .catch((error: Error) => ctx.log.error({ job: 'retention', err: error.message }, 'retention job failed'))
      .finally(() => { running = null; });
    await running;
    return true;
  };
  return {
    name: 'retention-scheduler',
    tick,
    start() { timer = setInterval(() => { void tick(); }, CHECK_EVERY_MS); timer.unref(); },
    async stop() { if (timer) clearInterval(timer); timer = null; await running; },
  };
}
