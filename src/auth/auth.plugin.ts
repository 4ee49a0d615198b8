import * as m0008 from '../db/migrations/0008-operator.ts';
import * as m0013 from '../db/migrations/0013-external-id-bidx.ts';
import type { DomainPlugin } from '../plugin/registry.ts';
import { registerApiKeyRoutes } from './api-keys.routes.ts';
import { createApiKeysService, type ApiKeysService } from './api-keys.service.ts';
import { keysCli } from './keys.cli.ts';

declare module '../plugin/registry.ts' {
  interface Ports {
    /** The key lifecycle: list, read, revoke, and the per-request expiry and last-use check (http/auth.ts). */
    apiKeys: ApiKeysService;
  }
}

/**
 * API keys after issue (issuing is POST /v1/api-keys, applications domain, and `lethe keys create`):
 * list, read, revoke, expiry and last use; `lethe keys list|revoke`.
 */
export const authPlugin: DomainPlugin = {
  name: 'auth',
  // 0008 (issue 13, operator completeness) also adds customers.external_id, the erasure journal's
  // record kind, settings.delete_customer_when_grace_ends and deletions.actor for the domains that use them.
  // 0013 moves external_id's uniqueness to its blind index (the value itself is encrypted).
  migrations: { '0008-operator': m0008, '0013-external-id-bidx': m0013 },
  cli: [keysCli],
  plug(ctx, r) {
    const keys = createApiKeysService(ctx);
    r.provide('apiKeys', keys);
    r.routes((app) => registerApiKeyRoutes(app, keys));
  },
};
