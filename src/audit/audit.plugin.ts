import type { DomainPlugin } from '../plugin/registry.ts';
import { registerAuditRoutes } from './audit.routes.ts';

/** The hash-chained audit log: reading and verifying it (writers call audit.repo.ts in their transaction). */
export const auditPlugin: DomainPlugin = {
  name: 'audit',
  plug(ctx, r) {
    r.routes((app) => registerAuditRoutes(app, ctx));
  },
};
