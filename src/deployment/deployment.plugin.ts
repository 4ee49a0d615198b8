import type { Ctx } from '../context.ts';
import type { ServicesCore } from '../services.ts';
import { operationalRetentionTask, outboxGauges } from './operational-retention.ts';
import { createBackupScheduler } from './scheduled-backups.ts';

/** Many instances, one truth (issue 11): pruning of operational tables, outbox gauges, scheduled backups. */
export function plugDeployment(ctx: Ctx, s: ServicesCore): void {
  s.retentionTasks.push(operationalRetentionTask(ctx.db));
  s.gaugeRefreshers.push(outboxGauges(ctx));
  if (ctx.config.schedulerEnabled) s.background.push(createBackupScheduler(ctx));
}
