import type { Ctx } from '../context.ts';
import type { ServicesCore } from '../services.ts';
import { registerEvidenceRoutes } from '../evidence/evidence.routes.ts';
import { registerStatsRoutes } from '../stats/stats.routes.ts';
import { clearCustomerExcerpts } from './delivery-health.repo.ts';
import { createOperatorService } from './operator.service.ts';
import { registerOperatorRoutes } from './operator.routes.ts';

/**
 * What the console's operators need beyond the core API: evidence (receipts listed and signed,
 * public receipt keys), stats, delivery health, retry/test webhooks and reasoned actions.
 */
export function plugOperator(ctx: Ctx, s: ServicesCore): void {
  const wake = () => (s.shared.wakeWebhookDispatcher as (() => void) | undefined)?.();
  const ops = createOperatorService(ctx, s.licenseObservers, wake);
  s.extraRoutes.push((app) => {
    registerEvidenceRoutes(app, ctx, s.deletion);
    registerStatsRoutes(app, ctx);
    registerOperatorRoutes(app, ctx, ops);
  });
  // Response excerpts of webhooks about the customer's cases go with the customer.
  s.deletionSteps.push({
    name: 'deliveryExcerpts',
    phase: 'after',
    run: async (trx, c) => ({ cleared: await clearCustomerExcerpts(trx, c.customer.id) }),
  });
}
