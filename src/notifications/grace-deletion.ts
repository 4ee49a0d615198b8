import { Counter, type Registry } from 'prom-client';
import type { Principal } from '../auth/api-keys.ts';
import type { Ctx } from '../context.ts';
import type { DeletionService } from '../erasure/deletion.service.ts';
import { AppError } from '../http/errors.ts';
import { readSettingsSection } from '../settings/settings.repo.ts';
import { graceDeletionCandidates } from './grace-deletion.repo.ts';

/** The system actor the audit log and the receipt name for deletions done by the grace-period job. */
export const GRACE_ACTOR = 'system:grace-periods';
const BATCH = 200;

function skippedCounter(registry: Registry) {
  const name = 'lethe_grace_deletions_skipped_total';
  return (registry.getSingleMetric(name) as Counter<'reason'> | undefined) ?? new Counter({
    name, help: 'Customers the grace-period job would have deleted but skipped (blocked: legal hold, pending transactions); retried at the next run',
    labelNames: ['reason'], registers: [registry],
  });
}

/**
 * With `deleteCustomerWhenGraceEnds` on, the grace-period job deletes (as GRACE_ACTOR, through the
 * normal deletion service: archive, redaction, cases, journal) every living customer who has held
 * at least one license, holds no active license now, and has deletion cases, none of them still
 * in its grace period (or revoked). A customer who never held a license is never a candidate.
 * A blocked customer is skipped, counted, and found again by the next run. Two instances running
 * this at once delete each customer once: the deletion locks the customer row, and the loser
 * finds it deleted (not_found), which is not counted as a deletion.
 */
export function createGraceDeletion(ctx: Ctx, deletion: () => DeletionService) {
  const { db } = ctx;
  const skipped = skippedCounter(ctx.metrics.registry);
  const system = { keyId: null, kind: 'operator', applicationIds: [] } as unknown as Principal;

  return {
    async run(): Promise<{ enabled: boolean; deleted: number; skipped: number; skippedByReason: Record<string, number> }> {
      const s = await readSettingsSection(db, 'notifications');
      const out = { enabled: s.deleteCustomerWhenGraceEnds, deleted: 0, skipped: 0, skippedByReason: {} as Record<string, number> };
      if (!s.deleteCustomerWhenGraceEnds) return out;
      let after: string | null = null;
      for (;;) {
        const ids = await graceDeletionCandidates(db, after, BATCH);
        if (ids.length === 0) break;
        for (const id of ids) {
          try {
            await deletion().delete(system, id, { actor: GRACE_ACTOR });
            out.deleted++;
          } catch (error) {
            if (error instanceof AppError && (error.code === 'legal_hold' || error.code === 'pending_transactions')) {
              out.skipped++;
              out.skippedByReason[error.code] = (out.skippedByReason[error.code] ?? 0) + 1;
              skipped.inc({ reason: error.code });
            } else if (!(error instanceof AppError && error.code === 'not_found')) {
              throw error; // not_found: another instance deleted it first
            }
          }
        }
        after = ids[ids.length - 1]!;
      }
      if (out.deleted || out.skipped) ctx.log.info({ deleted: out.deleted, skipped: out.skipped }, 'grace-period deletions');
      return out;
    },
  };
}
