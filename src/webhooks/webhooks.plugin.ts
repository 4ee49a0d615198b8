import * as m0003 from '../db/migrations/0003-webhooks.ts';
import type { DomainPlugin } from '../plugin/registry.ts';
import { createDispatcher, type DispatchSummary } from './dispatcher.ts';
import { createSsrfGuard } from './ssrf.ts';

/** What the webhooks domain offers: the URL check at registration, and the dispatcher. */
export interface WebhookDispatcherPort {
  /** Delivers what is due now (tests, `drain`); returns what it did. */
  dispatchOnce(): Promise<DispatchSummary>;
  /** Nudges the background loop (e.g. right after rows were enqueued). */
  wake(): void;
}

declare module '../plugin/registry.ts' {
  interface Ports {
    /** Refuses a webhook URL that is malformed or points into a private network (unless allowed). */
    webhookUrlCheck: (url: string) => Promise<void>;
    webhookDispatcher: WebhookDispatcherPort;
  }
}

/** Webhook delivery: the SSRF guard, the outbox dispatcher (a background task). */
export const webhooksPlugin: DomainPlugin = {
  name: 'webhooks',
  migrations: { '0003-webhooks': m0003 },
  plug(ctx, r) {
    const guard = createSsrfGuard({ allowPrivate: ctx.config.webhookAllowPrivate });
    r.provide('webhookUrlCheck', async (url) => { await guard.checkUrl(url); });

    const dispatcher = createDispatcher(ctx);
    r.background({
      name: 'webhook-dispatcher',
      start: () => { if (ctx.config.dispatcherEnabled) dispatcher.start(); },
      stop: () => dispatcher.stop(),
    });
    r.provide('webhookDispatcher', { dispatchOnce: () => dispatcher.dispatchOnce(), wake: () => dispatcher.wake() });
  },
};
