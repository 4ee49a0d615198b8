import { appendAudit } from '../audit/audit.repo.ts';
import type { Ctx } from '../context.ts';
import { DAY_MS } from '../clock.ts';
import * as repo from './dispatcher.repo.ts';
import { createSender, signatureHeaders, type Outcome, type SendResult } from './sender.ts';
import { createSsrfGuard, type Resolver } from './ssrf.ts';

export const LEASE_MS = 60_000;
/** An endpoint failing continuously this long is disabled. */
export const DISABLE_AFTER_MS = 5 * DAY_MS;

export interface DispatcherOptions {
  /** Lease owner id; defaults to the instance id. */
  owner?: string;
  /** Injected resolver for the connect-time SSRF guard (tests; there is no DNS here). */
  resolve?: Resolver;
  /** How long the background loop sleeps when nothing is due. */
  pollMs?: number;
  /** Deliveries in flight in this process, over all endpoints. */
  maxInFlight?: number;
}

export interface DispatchSummary {
  claimed: number;
  outcomes: Partial<Record<Outcome, number>>;
}

/**
 * The outbox dispatcher. Claims due rows under a lease, POSTs each signed body, records every
 * attempt, then settles the row: delivered, rescheduled per the retry schedule (Retry-After
 * honoured), failed after the last retry, or left pending when its endpoint gets disabled.
 */
export function createDispatcher(ctx: Ctx, options: DispatcherOptions = {}) {
  const { db, clock, config, log, metrics } = ctx;
  const owner = options.owner ?? config.instanceId;
  const pollMs = options.pollMs ?? 1000;
  const maxInFlight = options.maxInFlight ?? 256;
  const guard = createSsrfGuard({ allowPrivate: config.webhookAllowPrivate, ...(options.resolve ? { resolve: options.resolve } : {}) });
  const sender = createSender({ timeoutMs: config.webhookTimeoutMs, lookup: guard.lookup, maxSockets: maxInFlight });
  const schedule = config.webhookRetrySchedule;

  async function claim(max: number) {
    const now = clock.now();
    const rows = await repo.claimDue(db, {
      owner, now, leaseUntil: new Date(now.getTime() + LEASE_MS), perEndpoint: config.webhookConcurrencyPerEndpoint, max,
    });
    const endpoints = await repo.endpointsById(db, [...new Set(rows.map((r) => r.applicationId))]);
    return rows.map((row) => ({ row, endpoint: endpoints.get(row.applicationId) as repo.Endpoint | undefined }));
  }

  async function deliver(row: repo.ClaimedRow, endpoint: repo.Endpoint | undefined): Promise<Outcome | null> {
    if (!endpoint?.webhookUrl || !endpoint.enabled) { await repo.releaseLease(db, row.id, owner); return null; }
    const at = clock.now();
    const attempt = row.attempts + 1;
    // The exact bytes signed and sent; the same on every retry of this row.
    const body = JSON.stringify({ type: row.payload.type, timestamp: row.payload.timestamp, data: row.payload.data });
    const secrets = [endpoint.webhookSecret];
    if (endpoint.previousWebhookSecret && endpoint.previousSecretExpiresAt && endpoint.previousSecretExpiresAt > at) {
      secrets.push(endpoint.previousWebhookSecret);
    }
    let result: SendResult;
    let url: URL | null = null;
    try { url = new URL(endpoint.webhookUrl); } catch { /* stored URLs were checked; treat as refused */ }
    const problem = url ? guard.literalProblem(url) : 'is not a URL';
    if (!url || problem) {
      result = { outcome: 'refused', statusCode: null, error: `refused by the SSRF guard: host ${problem}`, retryAfterMs: null, durationMs: 0 };
    } else {
      result = await sender.send(url, body, signatureHeaders(row.id, at, body, secrets), at);
    }
    metrics.webhookDeliveries.inc({ outcome: result.outcome });
    await settle(row, attempt, at, result);
    return result.outcome;
  }

  async function settle(row: repo.ClaimedRow, attempt: number, at: Date, r: SendResult) {
    const done = clock.now();
    await db.transaction().execute(async (trx) => {
      await repo.recordAttempt(trx, {
        outboxId: row.id, applicationId: row.applicationId, attempt, at, durationMs: r.durationMs,
        statusCode: r.statusCode, outcome: r.outcome, error: r.error,
      });
      const base = { attempts: attempt, statusCode: r.statusCode, error: r.error };
      if (r.outcome === 'delivered') {
        await repo.settleRow(trx, row.id, owner, { ...base, status: 'delivered', deliveredAt: done });
        await repo.markEndpointHealthy(trx, row.applicationId);
        return;
      }
      let disableReason: string | null = null;
      if (r.outcome === 'gone') disableReason = 'gone';
      else {
        const since = await repo.markEndpointFailing(trx, row.applicationId, at);
        if (since && done.getTime() - since.getTime() >= DISABLE_AFTER_MS) disableReason = 'failing';
      }
      if (disableReason) {
        // The row is not lost: it stays pending (not counted against its retries beyond this
        // attempt) and goes out once the endpoint is re-enabled.
        await repo.settleRow(trx, row.id, owner, { ...base, status: 'pending', nextAttemptAt: done });
        if (await repo.disableEndpoint(trx, row.applicationId, disableReason, done)) {
          await appendAudit(trx, {
            type: 'application.disabled', actorKeyId: null, subjectType: 'application', subjectId: row.applicationId, at: done,
            data: { reason: disableReason, webhookId: row.id, statusCode: r.statusCode },
          });
          log.warn({ applicationId: row.applicationId, reason: disableReason }, 'webhook endpoint disabled');
        }
        return;
      }
      if (attempt > schedule.length) {
        await repo.settleRow(trx, row.id, owner, { ...base, status: 'failed' });
        return;
      }
      const delay = Math.max(schedule[attempt - 1]!, r.retryAfterMs ?? 0);
      await repo.settleRow(trx, row.id, owner, { ...base, status: 'pending', nextAttemptAt: new Date(done.getTime() + delay) });
    });
  }

  /** Claims what is due now and delivers it; resolves when every claimed row is settled (tests, jobs). */
  async function dispatchOnce(max = maxInFlight): Promise<DispatchSummary> {
    const claimed = await claim(max);
    const outcomes: Partial<Record<Outcome, number>> = {};
    await Promise.all(claimed.map(async ({ row, endpoint }) => {
      const o = await deliver(row, endpoint);
      if (o) outcomes[o] = (outcomes[o] ?? 0) + 1;
    }));
    return { claimed: claimed.length, outcomes };
  }

  /** Drains everything due now (a row rescheduled into the future is left for later). */
  async function drain(): Promise<DispatchSummary> {
    const total: DispatchSummary = { claimed: 0, outcomes: {} };
    for (;;) {
      const s = await dispatchOnce();
      if (s.claimed === 0) return total;
      total.claimed += s.claimed;
      for (const [k, v] of Object.entries(s.outcomes)) total.outcomes[k as Outcome] = (total.outcomes[k as Outcome] ?? 0) + v;
    }
  }

  // The background loop keeps up to maxInFlight deliveries running and claims again as soon as
  // one finishes (its endpoint's slot frees), or after pollMs when nothing was due.
  let running = false;
  let loopDone: Promise<void> = Promise.resolve();
  const inFlight = new Set<Promise<unknown>>();
  let wakeUp: (() => void) | null = null;
  const wake = () => { const w = wakeUp; wakeUp = null; w?.(); };
  const sleep = (ms: number) => new Promise<void>((resolve) => {
    const t = setTimeout(() => { wakeUp = null; resolve(); }, ms);
    wakeUp = () => { clearTimeout(t); resolve(); };
  });

  async function loop() {
    while (running) {
      let claimedNow = 0;
      const free = maxInFlight - inFlight.size;
      if (free > 0) {
        try {
          const claimed = await claim(free);
          claimedNow = claimed.length;
          for (const { row, endpoint } of claimed) {
            const p = deliver(row, endpoint)
              .catch((error: Error) => log.error({ err: { message: error.message }, webhookId: row.id }, 'webhook delivery failed to settle'))
              .finally(() => { inFlight.delete(p); wake(); });
            inFlight.add(p);
          }
        } catch (error) {
          log.error({ err: { message: (error as Error).message } }, 'webhook claim failed');
        }
      }
      if (running && claimedNow === 0) await sleep(pollMs);
    }
  }

  return {
    dispatchOnce,
    drain,
    /** Nudges the background loop (e.g. right after a notification pass enqueued rows). */
    wake,
    start() {
      if (running) return;
      running = true;
      loopDone = loop();
    },
    async stop() {
      running = false;
      wake();
      await loopDone;
      await Promise.allSettled([...inFlight]);
      sender.close();
    },
  };
}

export type Dispatcher = ReturnType<typeof createDispatcher>;
