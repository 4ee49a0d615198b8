import type { Ctx } from '../context.ts';
import type { ServicesCore } from '../services.ts';
import { createDispatcher } from './dispatcher.ts';
import { createSsrfGuard } from './ssrf.ts';

/** Webhook delivery: the SSRF guard, the outbox dispatcher (a background task). */
export function plugWebhooks(ctx: Ctx, s: ServicesCore): void {
  const guard = createSsrfGuard({ allowPrivate: ctx.config.webhookAllowPrivate });
  s.setWebhookUrlCheck((url) => guard.checkUrl(url));

  const dispatcher = createDispatcher(ctx);
  s.background.push({
    name: 'webhook-dispatcher',
    start: () => { if (ctx.config.dispatcherEnabled) dispatcher.start(); },
    stop: () => dispatcher.stop(),
  });
  // For other domains and tests: deliver what is due now, and nudge the loop after enqueuing.
  s.shared.webhookDispatcher = dispatcher;
  s.shared.dispatchOnce = dispatcher.dispatchOnce;
  s.shared.wakeWebhookDispatcher = dispatcher.wake;
}
