import { Gauge } from 'prom-client';
import { DAY_MS } from '../clock.ts';
import type { Ctx } from '../context.ts';
import type { Db } from '../db/database.ts';
import { readSettingsSection } from '../settings/settings.repo.ts';
import type { RetentionTask } from '../jobs/jobs.ts';
import { ABANDONED_AFTER_MS } from '../jobs/job-runs.ts';
import * as repo from './deployment.repo.ts';

/**
 * Part of the daily retention job: operational tables do not grow without bound.
 * - webhook_deliveries: attempts older than settings.webhookLogRetentionDays (default 30);
 * - webhook_outbox: delivered or failed webhooks older than that (pending ones are never pruned);
 * - job_runs: runs of jobs older than settings.jobRunRetentionDays (default 90). A run still
 *   `running` ABANDONED_AFTER_MS after its start (its process died) is first marked `abandoned`;
 *   a `running` row is never pruned.
 * (Idempotency records are pruned after settings.idempotencyRetentionHours, default 24, by the
 *   `idempotency-keys` task: src/jobs/retention-schedule.ts.)
 */
export function operationalRetentionTask(db: Db): RetentionTask {
  return {
    name: 'operational-tables',
    async run(at) {
      const s = await readSettingsSection(db, 'deployment');
      const webhookCutoff = new Date(at.getTime() - s.webhookLogRetentionDays * DAY_MS);
      const webhookDeliveriesDeleted = await repo.pruneDeliveries(db, webhookCutoff);
      const webhookOutboxDeleted = await repo.pruneOutbox(db, webhookCutoff);
      const jobRunsAbandoned = await repo.abandonStaleRuns(db, new Date(at.getTime() - ABANDONED_AFTER_MS));
      const jobRunsDeleted = await repo.pruneJobRuns(db, new Date(at.getTime() - s.jobRunRetentionDays * DAY_MS));
      return { webhookDeliveriesDeleted, webhookOutboxDeleted, jobRunsAbandoned, jobRunsDeleted };
    },
  };
}

/** /metrics: the pending outbox's size and the age of its oldest row (refreshed on scrape). */
export function outboxGauges(ctx: Ctx): () => Promise<void> {
  const { registry } = ctx.metrics;
  const gauge = (name: string, help: string) => (registry.getSingleMetric(name) as Gauge | undefined)
    ?? new Gauge({ name, help, registers: [registry] });
  const pending = gauge('lethe_webhook_outbox_pending', 'Webhooks waiting for delivery (outbox rows with status pending)');
  const oldest = gauge('lethe_webhook_outbox_oldest_pending_age_seconds', 'Age of the oldest pending webhook in seconds (0 when none)');
  return async () => {
    const r = await repo.pendingOutboxStats(ctx.db);
    pending.set(r.count);
    const since = r.oldest ? r.oldest.getTime() : null;
    oldest.set(since === null ? 0 : Math.max(0, (ctx.clock.now().getTime() - since) / 1000));
  };
}
