import type { Ctx } from '../context.ts';
import { readSettings } from './cases.repo.ts';
import { notificationZone } from './cases.service.ts';
import { instantOf, isValidTime, localDay, nextOccurrence } from './schedule.ts';

export interface SchedulerJobs {
  expireGracePeriods(): Promise<unknown>;
  notifyDue(opts: { day: string }): Promise<unknown>;
}

export interface SchedulerOptions {
  /** Real-time period of the check; decisions come from ctx.clock. */
  tickMs?: number;
  /** Clock time between two grace sweeps. */
  sweepEveryMs?: number;
}

/**
 * The in-process scheduler: timers in real time, decisions from the injected clock.
 * - The grace sweep runs every `sweepEveryMs` of clock time (default a minute).
 * - The notification pass runs once per local calendar day of settings.notificationTimeZone, at
 *   the first tick at or after that day's settings.notificationTime (DST: see schedule.ts). At
 *   start-up a pass whose time has already come today runs at once (catch-up after downtime).
 * Several instances may each run both: the database makes the work exactly-once per case and day.
 */
export function createScheduler(ctx: Ctx, jobs: SchedulerJobs, options: SchedulerOptions = {}) {
  const tickMs = options.tickMs ?? 15_000;
  const sweepEveryMs = options.sweepEveryMs ?? 60_000;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let lastSweepAt: number | null = null;
  let lastPassDay: string | null = null;

  async function tick(): Promise<{ swept: boolean; passDay: string | null }> {
    const now = ctx.clock.now();
    let swept = false;
    let passDay: string | null = null;
    if (lastSweepAt === null || now.getTime() - lastSweepAt >= sweepEveryMs) {
      lastSweepAt = now.getTime();
      // A failed sweep is retried at the next sweep time; it does not hold up the daily pass.
      swept = await jobs.expireGracePeriods().then(() => true, (error: Error) => {
        ctx.log.error({ job: 'grace-periods', err: error.message }, 'grace-period sweep failed');
        return false;
      });
    }
    const settings = await readSettings(ctx.db);
    const zone = notificationZone(ctx, settings.notificationTimeZone);
    const time = isValidTime(settings.notificationTime) ? settings.notificationTime : '00:00';
    const today = localDay(now, zone);
    if (lastPassDay !== today && now.getTime() >= instantOf(today, time, zone).getTime()) {
      // Marked done only once it succeeded: a failed pass is retried at the next tick.
      await jobs.notifyDue({ day: today });
      lastPassDay = today;
      passDay = today;
    }
    return { swept, passDay };
  }

  const safeTick = () => {
    if (running) return;
    running = tick().then(() => undefined, (error: Error) => {
      ctx.log.error({ err: error.message }, 'notification scheduler tick failed');
    }).finally(() => { running = null; });
  };

  return {
    name: 'notification-scheduler',
    tick,
    /** When the next daily pass is due (for logs and docs). */
    async nextPassAt(): Promise<Date> {
      const s = await readSettings(ctx.db);
      return nextOccurrence(ctx.clock.now(), s.notificationTime, notificationZone(ctx, s.notificationTimeZone));
    },
    start() {
      if (timer) return;
      safeTick();
      timer = setInterval(safeTick, tickMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = null;
      await running;
    },
  };
}
