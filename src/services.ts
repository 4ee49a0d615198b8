import type { FastifyInstance } from 'fastify';
import type { Ctx } from './context.ts';
import { createApplicationsService } from './applications/applications.service.ts';
import { createCustomersService, noLicenseObserver } from './customers/customers.service.ts';
import { createDeletionService, type DeletionStep } from './erasure/deletion.service.ts';
import { checkWebhookUrlBasic } from './applications/webhook-url.ts';
import type { JobRegistry, RetentionTask } from './jobs/jobs.ts';

/** Every service, wired from one context. Domains plug their parts in here. */
export function createServices(ctx: Ctx) {
  const steps: DeletionStep[] = [];
  const customers = createCustomersService(ctx, noLicenseObserver);
  const applications = createApplicationsService(ctx, async (url) => { await checkWebhookUrlBasic(url); });
  const deletion = createDeletionService(ctx, steps);
  const extraRoutes: Array<(app: FastifyInstance) => void> = [];
  const jobs: JobRegistry = new Map();
  /** Parts of the daily `retention` job, contributed by domains (redaction backlog, backups, idempotency rows). */
  const retentionTasks: RetentionTask[] = [];
  return {
    customers,
    applications,
    deletion,
    extraRoutes,
    jobs,
    retentionTasks,
    /** Refreshes gauges that are computed from the database, before a /metrics scrape. */
    refreshGauges: async () => undefined,
    /** Background work (scheduler, dispatcher) started by main.ts. */
    background: [] as Array<{ name: string; start(): void; stop(): Promise<void> }>,
  };
}

export type Services = ReturnType<typeof createServices>;
