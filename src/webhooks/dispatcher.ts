import { appendAudit } from '../audit/audit.repo.ts';
import type { Ctx } from '../context.ts';
import type { Db } from '../db/database.ts';
import { DAY_MS } from '../clock.ts';
import { openWebhookSecret } from '../applications/webhook-secrets.ts';
import * as repo from './dispatcher.repo.ts';
import { createSender, signatureHeaders, type Outcome, type SendResult } from './sender.ts';
import { createSsrfGuard, type Resolver } from './ssrf.ts';

export const LEASE_MS = 60_000;
/** Rows leased per endpoint, as a multiple of its concurrency cap (queued to start the moment a slot frees). */
const PREFETCH = 4;
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
  const cap = config.webhookConcurrencyPerEndpoint;

  interface Finished { row: repo.ClaimedRow; attempt: number; at: Date; result: SendResult }

  /**
   * One short transaction: settle what finished (releasing those leases), then lease what is
   * due into the freed slots. Settling and claiming share one commit, which is what bounds
   * throughput; the claim lock makes every endpoint's in-flight count exact across instances.
   */
  async function cycle(finished: Finished[], max: number, perEndpoint: number) {
    const now = clock.now();
    const leaseUntil = new Date(now.getTime() + LEASE_MS);
    const rows = await db.transaction().execute(async (trx) => {
      if (finished.length > 0) await settle(trx, finished);
      await repo.lockClaims(trx);
      return repo.claimDue(trx, { owner, now, leaseUntil, perEndpoint, max });
    });
    return { rows, leaseUntil };
  }

  async function deliver(row: repo.ClaimedRow): Promise<Finished | null> {
    const endpoint = row;
    if (!endpoint.webhookUrl) { await repo.releaseLease(db, row.id, owner); return null; }
    const at = clock.now();
    const attempt = row.attempts + 1;
    // The exact bytes signed and sent; the same on every retry of this row.
    const body = JSON.stringify({ type: row.payload.type, timestamp: row.payload.timestamp, data: row.payload.data });
    const secrets = [openWebhookSecret(ctx.secrets.storedSecretsKey, endpoint.applicationId, endpoint.webhookSecret)];
    if (endpoint.previousWebhookSecret && endpoint.previousSecretExpiresAt && endpoint.previousSecretExpiresAt > at) {
      secrets.push(openWebhookSecret(ctx.secrets.storedSecretsKey, endpoint.applicationId, endpoint.previousWebhookSecret));
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
    return { row, attempt, at, result };
  }

  async function settle(trx: Db, finished: Finished[]) {
    const done = clock.now();
    const records = finished.map((f): repo.AttemptRecord => ({
      outboxId: f.row.id, applicationId: f.row.applicationId, attempt: f.attempt, at: f.at, durationMs: f.result.durationMs,
      statusCode: f.result.statusCode, outcome: f.result.outcome, error: f.result.error, excerpt: f.result.excerpt ?? null,
    }));
    await repo.settleDelivered(trx, owner, records.filter((r) => r.outcome === 'delivered'), done);
    await repo.recordAttempts(trx, records.filter((r) => r.outcome !== 'delivered'));
    for (const f of finished) if (f.result.outcome !== 'delivered') await settleFailure(trx, f, done);
  }

  async function settleFailure(trx: Db, { row, attempt, at, result: r }: Finished, done: Date) {
    const base = { attempts: attempt, statusCode: r.statusCode, error: r.error };
    let disableReason: string | null = null;
    if (r.outcome === 'gone') disableReason = 'gone';
    else {
      const since = await repo.markEndpointFailing(trx, row.applicationId, at);
      if (since && done.getTime() - since.getTime() >= DISABLE_AFTER_MS) disableReason = 'failing';
    }
    if (disableReason) {
      // The row is not lost: it stays pending and goes out once the endpoint is re-enabled.
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
  }

  const summarize = (claimed: number, finished: Finished[]): DispatchSummary => {
    const outcomes: Partial<Record<Outcome, number>> = {};
    for (const f of finished) outcomes[f.result.outcome] = (outcomes[f.result.outcome] ?? 0) + 1;
    return { claimed, outcomes };
  };

  /** Claims what is due now and delivers it; resolves when every claimed row is settled (tests, jobs). */
  async function dispatchOnce(max = maxInFlight): Promise<DispatchSummary> {
    const { rows: claimed } = await cycle([], max, cap);
    const finished = (await Promise.all(claimed.map((row) => deliver(row)))).filter((f): f is Finished => f !== null);
    if (finished.length > 0) await db.transaction().execute((trx) => settle(trx, finished));
    return summarize(claimed.length, finished);
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

  // The background loop. Each endpoint has a queue of leased rows and at most `cap` requests in
  // flight; a finished request starts the next queued row at once (no database round trip) and
  // wakes the loop, whose next cycle settles what finished and refills the queues. Rows are
  // leased up to PREFETCH x cap per endpoint, so a queue rarely runs dry between cycles.
  let running = false;
  let loopDone: Promise<void> = Promise.resolve();
  const inFlight = new Set<Promise<unknown>>();
  const queues = new Map<string, Array<{ row: repo.ClaimedRow; leaseUntil: Date }>>();
  const active = new Map<string, number>();
  let queued = 0;
  let finishedQueue: Finished[] = [];
  let wakeUp: (() => void) | null = null;
  // A wake that arrives while the loop is busy is remembered, so the next sleep is skipped.
  let woken = false;
  const wake = () => { woken = true; const w = wakeUp; wakeUp = null; w?.(); };
  const sleep = (ms: number) => new Promise<void>((resolve) => {
    if (woken) { woken = false; resolve(); return; }
    const t = setTimeout(() => { wakeUp = null; resolve(); }, ms);
    wakeUp = () => { clearTimeout(t); woken = false; resolve(); };
  });

  function pump(applicationId: string) {
    const q = queues.get(applicationId);
    while (q && q.length > 0 && (active.get(applicationId) ?? 0) < cap && inFlight.size < maxInFlight) {
      const { row, leaseUntil } = q.shift()!;
      queued--;
      // Never start a request that could outlive the lease: leave the row to the next claim.
      if (!running || clock.now().getTime() + config.webhookTimeoutMs >= leaseUntil.getTime()) {
        repo.releaseLease(db, row.id, owner, leaseUntil).catch(() => { /* the lease expires on its own */ });
        continue;
      }
      active.set(applicationId, (active.get(applicationId) ?? 0) + 1);
      const p: Promise<void> = deliver(row)
        .then((f) => { if (f) finishedQueue.push(f); })
        .catch((error: Error) => log.error({ err: { message: error.message }, webhookId: row.id }, 'webhook delivery failed'))
        .finally(() => {
          inFlight.delete(p);
          active.set(applicationId, (active.get(applicationId) ?? 1) - 1);
          pump(applicationId);
          wake();
        });
      inFlight.add(p);
    }
    if (q && q.length === 0 && (active.get(applicationId) ?? 0) === 0) { queues.delete(applicationId); active.delete(applicationId); }
  }

  async function loop() {
    while (running) {
      woken = false;
      const batch = finishedQueue;
      finishedQueue = [];
      try {
        const room = PREFETCH * maxInFlight - inFlight.size - queued;
        const { rows, leaseUntil } = await cycle(batch, room, PREFETCH * cap);
        for (const row of rows) {
          let q = queues.get(row.applicationId);
          if (!q) { q = []; queues.set(row.applicationId, q); }
          q.push({ row, leaseUntil });
          queued++;
        }
        // Every queue, not only those that just grew: one may have waited for a global slot.
        for (const id of [...queues.keys()]) pump(id);
      } catch (error) {
        // Settle them next time; if this process dies first, their leases expire and they are sent again.
        finishedQueue.unshift(...batch);
        log.error({ err: { message: (error as Error).message } }, 'webhook dispatch cycle failed');
      }
      // Sleep until a delivery finishes or pollMs passes; while the queues still hold work, let
      // finished deliveries gather a little so one cycle settles many.
      if (running && queued > 0) await new Promise((resolve) => setTimeout(resolve, 25));
      if (running) await sleep(pollMs);
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
      // Leased rows not yet sent go back at once rather than when their leases expire.
      const unsent = [...queues.values()].flat().map(({ row }) => row.id);
      queues.clear();
      queued = 0;
      if (unsent.length > 0) {
        await repo.releaseLeases(db, unsent, owner)
          .catch((error: Error) => log.error({ err: { message: error.message } }, 'webhook lease release at stop failed'));
      }
      const rest = finishedQueue;
      finishedQueue = [];
      if (rest.length > 0) {
        await db.transaction().execute((trx) => settle(trx, rest))
          .catch((error: Error) => log.error({ err: { message: error.message } }, 'webhook settle at stop failed'));
      }
      sender.close();
    },
  };
}

export type Dispatcher = ReturnType<typeof createDispatcher>;
