import type { FastifyInstance } from 'fastify';
import type { Ctx } from './context.ts';
import { createApplicationsService } from './applications/applications.service.ts';
import { createCustomersService, type LicenseObserver } from './customers/customers.service.ts';
import { createDeletionService, type DeletionStep } from './erasure/deletion.service.ts';
import { checkWebhookUrlBasic } from './applications/webhook-url.ts';
import type { JobRegistry, RetentionTask } from './jobs/jobs.ts';
import { idempotencyPurgeTask, retentionScheduler } from './jobs/retention-schedule.ts';
import { plugErasure } from './erasure/erasure.plugin.ts';
import { plugWebhooks } from './webhooks/webhooks.plugin.ts';
import { plugNotifications } from './notifications/notifications.plugin.ts';
import { plugBackups } from './backups/backups.plugin.ts';
import { plugExports } from './exports/exports.plugin.ts';
import { plugDeployment } from './deployment/deployment.plugin.ts';

export interface BackgroundTask { name: string; start(): void; stop(): Promise<void> }

/**
 * Every service, wired from one context. Each domain plugs its parts in through its own
 * `plug*` function (routes, deletion steps, jobs, observers), so domains never edit each other.
 */
export function createServices(ctx: Ctx) {
  const steps: DeletionStep[] = [];
  const licenseObservers: LicenseObserver[] = [];
  // Observers are called in order inside the license's transaction.
  const observer: LicenseObserver = {
    licenseActivated: async (trx, c, a, at) => { for (const o of licenseObservers) await o.licenseActivated(trx, c, a, at); },
    licenseCancelled: async (trx, c, a, at) => { for (const o of licenseObservers) await o.licenseCancelled(trx, c, a, at); },
  };
  /** Validates a webhook URL at registration; the webhooks domain replaces it with the SSRF guard. */
  let webhookUrlCheck = async (url: string) => { await checkWebhookUrlBasic(url); };
  const jobs: JobRegistry = new Map();
  /** Parts of the daily `retention` job, contributed by domains (redaction backlog, backups, idempotency rows). */
  const retentionTasks: RetentionTask[] = [];
  const gaugeRefreshers: Array<() => Promise<void>> = [];
  const core = {
    customers: createCustomersService(ctx, observer),
    applications: createApplicationsService(ctx, (url) => webhookUrlCheck(url)),
    deletion: createDeletionService(ctx, steps),
    deletionSteps: steps,
    licenseObservers,
    setWebhookUrlCheck(check: (url: string) => Promise<void>) { webhookUrlCheck = check; },
    extraRoutes: [] as Array<(app: FastifyInstance) => void>,
    jobs,
    retentionTasks,
    gaugeRefreshers,
    /** Refreshes gauges that are computed from the database, before a /metrics scrape. */
    refreshGauges: async () => { for (const r of gaugeRefreshers) await r(); },
    /** Background work (scheduler, dispatcher) started by main.ts. */
    background: [] as BackgroundTask[],
    /** Domain-owned extras other domains may use (e.g. the data-subject export for backups). */
    shared: {} as Record<string, unknown>,
  };
  const retention = {
    name: 'retention',
    async run(actorKeyId: string | null) {
      const at = ctx.clock.now();
      const result: Record<string, unknown> = {};
      for (const task of retentionTasks) result[task.name] = await task.run(at, actorKeyId);
      return result;
    },
  };
  jobs.set('retention', retention);
  retentionTasks.push(idempotencyPurgeTask(ctx.db));
  if (ctx.config.schedulerEnabled) core.background.push(retentionScheduler(ctx, retention));
  // Order matters where domains depend on each other: exports (subject export) before backups.
  plugErasure(ctx, core);
  plugWebhooks(ctx, core);
  plugNotifications(ctx, core);
  plugExports(ctx, core);
  plugBackups(ctx, core);
  plugDeployment(ctx, core);
  return core;
}

export type ServicesCore = ReturnType<typeof createServices>;
export type Services = ServicesCore;
