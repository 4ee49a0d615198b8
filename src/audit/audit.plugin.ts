import type { DomainPlugin } from '../plugin/registry.ts';
import { registerAuditRoutes } from './audit.routes.ts';
import { registerAuditCheckpoints } from './checkpoints.ts';
import { recordRestoreCli } from './record-restore.cli.ts';
import * as m0006 from '../db/migrations/0006-security.ts';
import * as m0016 from '../db/migrations/0016-audit-head.ts';

/** The hash-chained audit log: reading and verifying it (writers call audit.repo.ts in their transaction). */
export const auditPlugin: DomainPlugin = {
  name: 'audit',
  migrations: { '0006-security': m0006, '0016-audit-head': m0016 },
  cli: [recordRestoreCli],
  plug(ctx, r) {
    r.routes((app) => {
      // After every authenticated write, the chain's head is checkpointed outside the database.
      registerAuditCheckpoints(app, { db: ctx.db, config: ctx.config, key: ctx.secrets.auditKey, now: () => ctx.clock.now(), log: ctx.log });
      registerAuditRoutes(app, ctx);
    });
  },
};
