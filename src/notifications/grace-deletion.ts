import { sql } from 'kysely';
import { Counter, type Registry } from 'prom-client';
import type { Principal } from '../auth/api-keys.ts';
import type { Ctx } from '../context.ts';
import type { DeletionService } from '../erasure/deletion.service.ts';
import { AppError } from '../http/errors.ts';

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
export function createGraceDeletion(ctx: Ctx, deletion: DeletionService) {
  const { db } = ctx;
  const skipped = skippedCounter(ctx.metrics.registry);
  const system = { keyId: null, kind: 'operator', applicationIds: [] } as unknown as Principal;

  async function candidates(after: string | null): Promise<string[]> {
    const r = await sql<{ id: string }>`
      SELECT c.id FROM customers c
      WHERE c.deleted_at IS NULL ${after ? sql`AND c.id > ${after}::uuid` : sql``}
        AND EXISTS (SELECT 1 FROM licenses l WHERE l.customer_id = c.id)
        AND NOT EXISTS (SELECT 1 FROM licenses l WHERE l.customer_id = c.id AND l.status = 'active' AND l.deleted_at IS NULL)
        AND EXISTS (SELECT 1 FROM deletion_cases d WHERE d.customer_id = c.id)
        AND NOT EXISTS (SELECT 1 FROM deletion_cases d WHERE d.customer_id = c.id AND d.status IN ('grace', 'revoked'))
      ORDER BY c.id LIMIT ${BATCH}`.execute(db);
    return r.rows.map((x) => x.id);
  }

  return {
    async run(): Promise<{ enabled: boolean; deleted: number; skipped: number; skippedByReason: Record<string, number> }> {
      const s = await db.selectFrom('settings').select('deleteCustomerWhenGraceEnds').where('id', '=', 1).executeTakeFirstOrThrow();
      const out = { enabled: s.deleteCustomerWhenGraceEnds, deleted: 0, skipped: 0, skippedByReason: {} as Record<string, number> };
      if (!s.deleteCustomerWhenGraceEnds) return out;
      let after: string | null = null;
      for (;;) {
        const ids = await candidates(after);
        if (ids.length === 0) break;
        for (const id of ids) {
          try {
            await deletion.delete(system, id, { actor: GRACE_ACTOR });
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
