import type { Ctx } from '../context.ts';
import type { ServicesCore } from '../services.ts';

/** Webhook delivery: the outbox dispatcher, deliveries API, endpoint management. */
export function plugWebhooks(_ctx: Ctx, _s: ServicesCore): void {
  // Nothing yet.
}
