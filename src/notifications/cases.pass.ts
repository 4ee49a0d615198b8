import { appendAudit, lockAuditChain } from '../audit/audit.repo.ts';
import { crashPoint } from '../deployment/crash-points.ts';
import type { Ctx } from '../context.ts';
import { zoneOf } from './case-events.ts';
import * as repo from './cases.repo.ts';
import { localDay } from './schedule.ts';

export interface BatchOptions { batchSize?: number }

/** The scheduled work on cases: the grace sweep and the daily notification pass. */
export function createDailyPass(ctx: Ctx) {
  const { db, clock } = ctx;

  /** The grace sweep: every case whose grace period has ended becomes required and is notified at once. */
  async function expireGracePeriods(opts: BatchOptions = {}) {
    const at = clock.now();
    const { zone } = await zoneOf(ctx, db);
    const day = localDay(at, zone);
    let total = 0;
    for (;;) {
      const n = await db.transaction().execute(async (trx) => {
        // The chain's lock first, so this batch never waits for it while holding case rows.
        await lockAuditChain(trx);
        const rows = await repo.expireGraceBatch(trx, day, at, opts.batchSize ?? 500);
        for (const r of rows) {
          await appendAudit(trx, {
            type: 'deletion_case.required', actorKeyId: null, subjectType: 'deletion_case', subjectId: r.id, at,
            data: { subscriptionId: r.customerId, applicationId: r.applicationId, status: 'required', reason: 'grace_expired' },
          });
        }
        if (rows.length) crashPoint('grace-sweep'); // test-only: SIGKILL before this batch commits
        return rows.length;
      });
      total += n;
      if (n === 0) break;
    }
    return { required: total, notified: total, day };
  }

  /**
   * The daily notification pass: one webhook for every required case not yet notified on the
   * local calendar day of `at` (or `day`). Safe to run any number of times and on any number of
   * instances at once: a case is notified at most once per day.
   */
  async function notifyDue(opts: BatchOptions & { day?: string; actorKeyId?: string | null } = {}) {
    const at = clock.now();
    const { zone } = await zoneOf(ctx, db);
    const day = opts.day ?? localDay(at, zone);
    // Rows per heap page is about 25 (fillfactor 50): a batch of N cases is N / 25 pages.
    const step = Math.max(1, Math.ceil((opts.batchSize ?? 20_000) / 25));
    const pages = await repo.casePages(db);
    let total = 0;
    for (let from = 0; from < pages; from += step) {
      const to = from + step;
      total += await db.transaction().execute((trx) => repo.notifyBatch(trx, day, at, from, to));
      if (total > 0) crashPoint('notification-pass'); // test-only: SIGKILL after a batch committed
    }
    // Then the rest in one statement: pages added during the pass, and rows that were locked by
    // another transaction a moment ago (usually nothing; one sequential scan).
    total += await db.transaction().execute((trx) => repo.notifyBatch(trx, day, at, null, null));
    if (total > 0) {
      await db.transaction().execute((trx) => appendAudit(trx, {
        type: 'deletion_notifications.enqueued', actorKeyId: opts.actorKeyId ?? null, at,
        data: { day, timeZone: zone, enqueued: total },
      }));
    }
    return { day, timeZone: zone, enqueued: total };
  }

  return { expireGracePeriods, notifyDue };
}
