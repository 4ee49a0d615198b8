import * as m0007 from '../db/migrations/0007-deployment.ts';
import * as m0014 from '../db/migrations/0014-idempotency-retention.ts';
import * as m0017 from '../db/migrations/0017-journal-claim.ts';
import type { DomainPlugin } from '../plugin/registry.ts';
import { SETTINGS_SECTIONS } from '../settings/settings.repo.ts';
import { operationalRetentionTask, outboxGauges } from './operational-retention.ts';
import { createBackupScheduler } from './scheduled-backups.ts';

/**
 * Many instances, one truth (issue 11): pruning of operational tables, outbox gauges, scheduled
 * database backups. Migration 0007 (stored_files, deployment, job_runs, the journal's
 * file_appended_at, these settings) is this domain's; the start-up guards (guards.ts,
 * data-dir-lock.ts) run in runtime.ts/main.ts before any domain is plugged.
 */
export const deploymentPlugin: DomainPlugin = {
  name: 'deployment',
  // 0014: idempotencyRetentionHours (the idempotency store's replay window and purge, src/http/idempotency.ts).
  migrations: { '0007-deployment': m0007, '0014-idempotency-retention': m0014, '0017-journal-claim': m0017 },
  plug(ctx, r) {
    r.settingsSection({ fields: SETTINGS_SECTIONS.deployment });
    r.retentionTask(operationalRetentionTask(ctx.db));
    r.gauge(outboxGauges(ctx));
    if (ctx.config.schedulerEnabled) r.background(createBackupScheduler(ctx));
  },
};
