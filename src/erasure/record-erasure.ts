import { sql } from 'kysely';
import { appendAudit } from '../audit/audit.repo.ts';
import type { Ctx } from '../context.ts';
import { appendActivity } from '../customers/activity.repo.ts';
import type { CollectionDef } from '../customers/collections.ts';
import { findLiveCustomer } from '../customers/customers.repo.ts';
import type { Db } from '../db/database.ts';
import { AppError, notFound } from '../http/errors.ts';
import { removeBlobs } from './photo-cleanup.ts';
import { redactRecord } from './redaction.ts';
import { effectivePolicy } from './redaction-policy.ts';
import { getSettings } from './settings.repo.ts';

/** Collections whose records may be removed one by one (SPEC: the rest answer 405). */
export const ERASABLE = new Set(['addresses', 'payment-methods', 'memberships', 'social-identities']);

export interface RecordErasureContext {
  def: CollectionDef;
  customerId: string;
  recordId: string;
  at: Date;
  actorKeyId: string | null;
}

/** A part of a record's erasure owned by another domain (the erasure journal), in the same transaction. */
export interface RecordErasureStep {
  name: string;
  run(trx: Db, c: RecordErasureContext): Promise<unknown>;
  afterCommit?(c: RecordErasureContext, result: unknown): Promise<void> | void;
}

/**
 * Removes one record of a customer's collection: soft deleted and redacted per the redaction
 * policy whatever the automatic-deletion setting (the same redaction code as a customer's
 * deletion), its stored request responses purged, an activity entry and an audit event (ids
 * only), and whatever the steps add (the erasure journal), all in one transaction.
 */
export function createRecordErasure(ctx: Ctx, steps: RecordErasureStep[]) {
  const { db, clock } = ctx;
  return {
    async erase(actorKeyId: string | null, def: CollectionDef, customerId: string, recordId: string): Promise<void> {
      const results = new Map<RecordErasureStep, unknown>();
      let context: RecordErasureContext | undefined;
      let blobKeys: string[] = [];
      await db.transaction().execute(async (trx) => {
        results.clear();
        if (!await findLiveCustomer(trx, customerId, 'share')) throw notFound('Customer');
        if (!ERASABLE.has(def.path)) {
          throw new AppError('method_not_allowed', `Records of ${def.path} cannot be deleted one by one; they go with the customer`,
            undefined, { allow: def.table === 'licenses' ? 'GET' : 'GET, PATCH' });
        }
        const found = await sql<{ id: string }>`SELECT id FROM ${sql.table(def.sqlTable)}
          WHERE id = ${recordId} AND customer_id = ${customerId} AND deleted_at IS NULL FOR UPDATE`.execute(trx);
        if (found.rows.length === 0) throw notFound(def.entity);
        const at = clock.now();
        const c: RecordErasureContext = { def, customerId, recordId, at, actorKeyId };
        context = c;
        await sql`UPDATE ${sql.table(def.sqlTable)} SET deleted_at = ${at}, updated_at = ${at} WHERE id = ${recordId}`.execute(trx);
        const s = await getSettings(trx);
        const outcome = await redactRecord(trx, def.sqlTable, customerId, recordId, effectivePolicy(s.redactionOverrides), at);
        blobKeys = outcome.blobKeys;
        await appendActivity(trx, { customerId, type: `${def.entity}.deleted`, recordId, at });
        for (const step of steps) results.set(step, await step.run(trx, c));
        await appendAudit(trx, {
          type: 'record.deleted', actorKeyId, subjectType: def.entity, subjectId: recordId, at,
          data: { customerId, collection: def.path, recordId, policyVersion: s.policyVersion, redacted: outcome.counts },
        });
      });
      await removeBlobs(ctx.db, ctx.blobs, blobKeys, ctx.log);
      for (const [step, result] of results) {
        if (step.afterCommit && context) {
          try { await step.afterCommit(context, result); } catch (err) {
            ctx.log.warn({ step: step.name, err: (err as Error).message }, 'post-commit record erasure step failed; will be retried');
          }
        }
      }
    },
  };
}

export type RecordErasure = ReturnType<typeof createRecordErasure>;
