import type { DomainPlugin } from '../plugin/registry.ts';
import { customerExcerptsClear } from './delivery-health.repo.ts';
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
    r.deletionStep<null>({
      name: 'deliveryExcerpts',
      phase: 'after',
      // After the cases step (20), which enqueues the deletion's own webhooks (no attempts yet).
      order: 30,
      run: async (_trx, c) => {
        c.deferredWrites.push(() => customerExcerptsClear(c.customer.id));
        return null;
      },
    });
  },
};
