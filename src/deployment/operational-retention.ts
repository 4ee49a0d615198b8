import { sql } from 'kysely';
import { Gauge } from 'prom-client';
import { DAY_MS } from '../clock.ts';
import type { Ctx } from '../context.ts';
import type { Db } from '../db/database.ts';
import { readSettingsSection } from '../settings/settings.repo.ts';
import type { RetentionTask } from '../jobs/jobs.ts';

/**
 * Part of the daily retention job: operational tables do not grow without bound.
 * - webhook_deliveries: attempts older than settings.webhookLogRetentionDays (default 30);
 * - webhook_outbox: delivered or failed webhooks older than that (pending ones are never pruned);
 * - job_runs: claims of scheduled runs older than settings.jobRunRetentionDays (default 90).
 * (Idempotency records are pruned after 24 hours by the `idempotency-keys` task.)
 */
export function operationalRetentionTask(db: Db): RetentionTask {
  return {
    name: 'operational-tables',
    async run(at) {
      const s = await readSettingsSection(db, 'deployment');
      const webhookCutoff = new Date(at.getTime() - s.webhookLogRetentionDays * DAY_MS);
      const deliveries = await db.deleteFrom('webhookDeliveries').where('attemptedAt', '<', webhookCutoff).executeTakeFirst();
      const outbox = await db.transaction().execute(async (trx) => {
        // Deliveries of a pruned webhook go with it (their foreign key), whatever their age.
        await sql`DELETE FROM webhook_deliveries d USING webhook_outbox o
          WHERE d.outbox_id = o.id AND o.status <> 'pending' AND o.created_at < ${webhookCutoff}`.execute(trx);
        return trx.deleteFrom('webhookOutbox').where('status', '<>', 'pending').where('createdAt', '<', webhookCutoff).executeTakeFirst();
      });
      const jobCutoff = new Date(at.getTime() - s.jobRunRetentionDays * DAY_MS);
      const runs = await db.deleteFrom('jobRuns').where('startedAt', '<', jobCutoff).executeTakeFirst();
      return {
        webhookDeliveriesDeleted: Number(deliveries.numDeletedRows),
        webhookOutboxDeleted: Number(outbox.numDeletedRows),
        jobRunsDeleted: Number(runs.numDeletedRows),
      };
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
    const r = await ctx.db.selectFrom('webhookOutbox').where('status', '=', 'pending')
      .select((eb) => [eb.fn.countAll().as('n'), eb.fn.min('createdAt').as('oldest')]).executeTakeFirstOrThrow();
    pending.set(Number(r.n));
    const since = r.oldest ? new Date(r.oldest as unknown as string | Date).getTime() : null;
    oldest.set(since === null ? 0 : Math.max(0, (ctx.clock.now().getTime() - since) / 1000));
  };
}
