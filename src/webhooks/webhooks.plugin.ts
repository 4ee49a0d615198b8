import type { Ctx } from '../context.ts';
import type { ServicesCore } from '../services.ts';
import { createSsrfGuard } from './ssrf.ts';

/** Webhook delivery: the outbox dispatcher, deliveries API, endpoint management. */
export function plugWebhooks(ctx: Ctx, s: ServicesCore): void {
  const guard = createSsrfGuard({ allowPrivate: ctx.config.webhookAllowPrivate });
  s.setWebhookUrlCheck((url) => guard.checkUrl(url));
}
