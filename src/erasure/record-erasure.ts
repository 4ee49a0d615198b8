import { appendAudit } from '../audit/audit.repo.ts';
import type { Ctx } from '../context.ts';
import { appendActivity } from '../customers/activity.repo.ts';
import type { CollectionDef } from '../customers/collections.ts';
import { findLiveCustomer } from '../customers/customers.repo.ts';
import { AppError, notFound } from '../http/errors.ts';
import type { Ports } from '../plugin/registry.ts';
import { readSettingsSection } from '../settings/settings.repo.ts';
import { lockLiveRecord, softDeleteRecord } from './record-erasure.repo.ts';
import { redactRecord } from './redaction.ts';
import { effectivePolicy } from './redaction-policy.ts';

/** Collections whose records may be removed one by one (SPEC: the rest answer 405). */
export const ERASABLE = new Set(['addresses', 'payment-methods', 'memberships', 'social-identities']);

export interface RecordErasureDeps {
  /** The erasure journal (backups domain): records the removal inside its transaction. */
  journal: () => Ports['erasureJournal'];
}

/**
 * Removes one record of a customer's collection: soft deleted and redacted per the redaction
 * policy whatever the automatic-deletion setting (the same redaction code as a customer's
 * deletion), its stored request responses purged, an activity entry and an audit event (ids
 * only), and an erasure-journal entry (so a restore removes it again), all in one transaction.
 */
export function createRecordErasure(ctx: Ctx, deps: RecordErasureDeps) {
  const { db, clock } = ctx;
  return {
    async erase(actorKeyId: string | null, def: CollectionDef, customerId: string, recordId: string): Promise<void> {
      let blobKeys: string[] = [];
      let appendJournal: (() => Promise<void>) | undefined;
      await db.transaction().execute(async (trx) => {
        appendJournal = undefined;
        if (!await findLiveCustomer(trx, customerId, 'share')) throw notFound('Customer');
        if (!ERASABLE.has(def.path)) {
          throw new AppError('method_not_allowed', `Records of ${def.path} cannot be deleted one by one; they go with the customer`,
            undefined, { allow: def.table === 'licenses' ? 'GET' : 'GET, PATCH' });
        }
        if (!await lockLiveRecord(trx, def, customerId, recordId)) throw notFound(def.entity);
        const at = clock.now();
        await softDeleteRecord(trx, def, recordId, at);
        const s = await readSettingsSection(trx, 'erasure');
        const outcome = await redactRecord(trx, ctx.crypto, def.sqlTable, customerId, recordId, effectivePolicy(s.redactionOverrides), at);
        blobKeys = outcome.blobKeys;
        await appendActivity(trx, ctx.crypto, { customerId, type: `${def.entity}.deleted`, recordId, at });
        appendJournal = await deps.journal().recordRemoval(trx, { customerId, recordTable: def.sqlTable, recordId, actorKeyId, at });
        await appendAudit(trx, {
          type: 'record.deleted', actorKeyId, subjectType: def.entity, subjectId: recordId, at,
          data: { customerId, collection: def.path, recordId, policyVersion: s.policyVersion, redacted: outcome.counts },
        });
      });
      try {
        await appendJournal?.();
      } catch (err) {
        // The table has the entry; the retention job and the next restore copy it into the file.
        ctx.log.warn({ err: (err as Error).message }, 'record erasure not in the journal file yet; repaired from the table');
      }
    },
  };
}

export type RecordErasure = ReturnType<typeof createRecordErasure>;
