import type { DomainPlugin } from '../plugin/registry.ts';
import { clearCustomerExcerpts } from './delivery-health.repo.ts';
import { registerOperatorRoutes } from './operator.routes.ts';
import { createOperatorService } from './operator.service.ts';

/**
 * What the console's operators need beyond the core API: delivery health, retry now and test
 * webhooks, and reasoned actions (legal hold, license cancellation, endpoint disable).
 */
export const operatorPlugin: DomainPlugin = {
  name: 'operator',
  plug(ctx, r) {
    const dispatcher = r.port('webhookDispatcher');
    const ops = createOperatorService(ctx, {
      licenseObservers: () => r.registry().licenseObservers,
      wake: () => dispatcher().wake(),
    });
    r.routes((app) => registerOperatorRoutes(app, ctx, ops));
    // Response excerpts of webhooks about the customer's cases go with the customer.
    r.deletionStep<{ cleared: number }>({
      name: 'deliveryExcerpts',
      phase: 'after',
      // After the cases step (20), which enqueues the deletion's own webhooks (no attempts yet).
      order: 30,
      run: async (trx, c) => ({ cleared: await clearCustomerExcerpts(trx, c.customer.id) }),
    });
  },
};
