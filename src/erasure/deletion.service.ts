import { crashPoint } from '../deployment/crash-points.ts';
import { deferAudit, flushAuditWith } from '../audit/audit.repo.ts';
import type { Principal } from '../auth/api-keys.ts';
import type { Ctx } from '../context.ts';
import { appendActivity, orderedId } from '../customers/activity.repo.ts';
import { findLiveCustomer } from '../customers/customers.repo.ts';
import { retryTransaction } from '../db/retry.ts';
import type { Selectable } from 'kysely';
import type { Customer, DeletionsTable } from '../db/schema.ts';
import { AppError, notFound } from '../http/errors.ts';
import * as repo from './deletion.repo.ts';
import { adoptSettings } from '../settings/settings.repo.ts';
import type { CascadeValues, DeletionContext, DeletionPrefetch, DeletionReceiptFields, DeletionStep } from '../plugin/registry.ts';
import { customerRef } from './pseudonym.ts';

export type { DeletionContext, DeletionStep } from '../plugin/registry.ts';

export interface Blocker { code: 'legal_hold' | 'pending_transactions'; detail: string; count?: number }

/**
 * Deletion: blockers, the cascade, the receipt. Everything else a deletion does is a step some
 * domain registered (`r.deletionStep`); `steps` returns them in order (phase, then `order`).
 */
export function createDeletionService(ctx: Ctx, stepsOf: () => readonly DeletionStep[]) {
  const { db, clock } = ctx;

  function blockersOf(c: Customer, pending: number): Blocker[] {
    const blockers: Blocker[] = [];
    if (c.legalHold) blockers.push({ code: 'legal_hold', detail: 'The customer is under legal hold; lift the hold first' });
    if (pending > 0) {
      blockers.push({
        code: 'pending_transactions', count: pending,
        detail: `${pending} pending transaction(s) must settle (PATCH /v1/transactions/{id}) before deletion`,
      });
    }
    return blockers;
  }

  return {
    async preview(customerId: string) {
      const c = await findLiveCustomer(db, customerId);
      if (!c) throw notFound('Customer');
      const [counts, extra, apps] = await Promise.all([
        repo.countLive(db, customerId), repo.blockerCounts(db, customerId), repo.licensedApplicationIds(db, customerId),
      ]);
      const blockers = blockersOf(c, extra.pending);
      const stepPreviews: Record<string, unknown> = {};
      for (const step of stepsOf()) if (step.preview) stepPreviews[step.name] = await step.preview(db, c);
      const notified = new Set(apps);
      for (const p of Object.values(stepPreviews)) {
        for (const id of (p as { applicationIds?: string[] } | null)?.applicationIds ?? []) notified.add(id);
      }
      return {
        customerId,
        deletable: blockers.length === 0,
        blockers,
        softDeleted: { customer: 1, ...counts },
        cancelled: { subscriptions: extra.activeSubscriptions, licenses: extra.activeLicenses },
        preservedTransactions: extra.transactions,
        activityEntries: extra.activity,
        profilePhoto: c.profilePhotoKey !== null,
        applicationsToNotify: [...notified].sort(),
        ...stepPreviews,
      };
    },

    /**
     * Deletes a customer. `options.actor` names a system actor (the grace-period job) when Lethe
     * deletes on its own; it is recorded in the audit event and on the receipt.
     */
    async delete(principal: Principal, customerId: string, options: { actor?: string } = {}) {
      const results = new Map<DeletionStep, unknown>();
      let context: DeletionContext | undefined;
      try {
        const steps = stepsOf();
        await retryTransaction(() => db.transaction().execute(async (trx) => {
          results.clear();
          // FOR UPDATE serializes against a concurrent DELETE and against child writes (FOR SHARE).
          const row = await findLiveCustomer(trx, customerId, 'update');
          if (!row) throw notFound('Customer');
          // After the lock (a statement of its own: its snapshot sees what writers committed while
          // we waited): the blockers, and what the steps read next (the customer's data key, which
          // decrypts the row, the current key epoch, the settings), kept for this transaction.
          ctx.crypto.keys.holdCustomer(trx, customerId);
          const prefetches: DeletionPrefetch[] = [];
          for (const step of steps) {
            const p = step.prefetch ? await step.prefetch(trx, customerId) : null;
            if (p) prefetches.push(p);
          }
          const extra = await repo.blockerCounts(trx, customerId, prefetches);
          prefetches.forEach((p, i) => p.adopt(extra.steps[i]));
          ctx.crypto.keys.adoptWrapped(trx, [customerId], extra.prefetched.wrappedKeys);
          ctx.crypto.keys.adoptEpoch(trx, extra.prefetched.currentEpoch);
          adoptSettings(trx, extra.prefetched.settings);
          const customer = ctx.crypto.decryptRow('customers', row, customerId, (await ctx.crypto.keysOf(trx, [customerId])).get(customerId));
          const [blocker] = blockersOf(customer, extra.pending);
          if (blocker) throw new AppError(blocker.code, blocker.detail);

          deferAudit(trx);
          const at = clock.now();
          const c: DeletionContext = {
            customer, at, actorKeyId: principal.keyId,
            applicationIds: new Set(extra.applicationIds), deferredWrites: [],
          };
          context = c;
          for (const step of steps.filter((s) => s.phase === 'before')) results.set(step, await step.run(trx, c));

          // One statement: every collection soft deleted (active subscriptions and licenses cancelled
          // and the steps' values written in the same UPDATE), transactions unlinked to the
          // pseudonym, the customer marked deleted.
          // Steps' values for the cascade's UPDATEs (the redaction's new values: one row version per record).
          const values: CascadeValues[] = [];
          for (const step of steps) if (step.cascadeValues) values.push(...await step.cascadeValues(trx, c));
          const cascaded = await repo.cascade(trx, customerId, customerRef(ctx.secrets.pseudonymKey, customerId), at, values);
          const counts: Record<string, number> = { customer: 1, ...cascaded.deleted };
          const cancelled = { subscriptions: cascaded.cancelled.subscriptions ?? 0, licenses: cascaded.cancelled.licenses ?? 0 };
          const preserved = cascaded.preserved;
          c.deletedEntry = { id: orderedId(at), details: { email: customer.email, displayName: customer.displayName, counts } };
          if (!c.deletedEntryWriter) {
            await appendActivity(trx, ctx.crypto, { customerId, type: 'customer.deleted', at, ...c.deletedEntry });
          }

          for (const step of steps.filter((s) => s.phase === 'after')) results.set(step, await step.run(trx, c));

          const applicationsNotified = [...c.applicationIds].sort();
          // Receipt columns other domains fill, each from its own step's result.
          const receipt: DeletionReceiptFields = { redaction: null, backupId: null, keyDestroyedAt: null, keyEpochId: null };
          for (const [step, result] of results) if (step.receipt) Object.assign(receipt, step.receipt(result));
          crashPoint('delete.before-commit'); // test-only (NODE_ENV=test): SIGKILL before the commit
          // Every event of the deletion (steps' and this one) is appended here, at the end; the
          // receipt, which names the last event and its hash, is written by the same statement,
          // the transaction's last: its COMMIT follows it at once (the chain's lock is held until then).
          await flushAuditWith(trx, [{
            type: 'customer.deleted', actorKeyId: principal.keyId, subjectType: 'customer', subjectId: customerId, at,
            data: { counts, cancelled, preservedTransactions: preserved, applicationsNotified, ...(options.actor ? { actor: options.actor } : {}) },
          }], (events0, events) => {
            const audit = events[events.length - 1]!;
            let qc = events0;
            c.deferredWrites.forEach((write, i) => { qc = qc.with(`deferred_${i}`, write); });
            return repo.receiptInsert(qc, {
              customerId, deletedAt: at, actorKeyId: principal.keyId,
              counts: { ...counts, cancelledSubscriptions: cancelled.subscriptions, cancelledLicenses: cancelled.licenses },
              preservedTransactions: preserved, applicationsNotified, auditEventId: audit.id, auditHash: audit.hash, ...receipt,
              actor: options.actor ?? null,
            });
          }, true);
        }));
      } catch (error) {
        ctx.metrics.deletions.inc({ outcome: error instanceof AppError ? error.code : 'error' });
        throw error;
      }
      ctx.metrics.deletions.inc({ outcome: 'deleted' });
      for (const [step, result] of results) {
        if (step.afterCommit && context) {
          // The step made its work durable (e.g. a pending-deletion row), so a failure here is repaired later.
          await step.afterCommit(context, result).catch((err: Error) =>
            ctx.log.warn({ step: step.name, err: err.message }, 'post-commit deletion step failed; will be retried'));
        }
      }
    },

    /** A deletions row as its receipt, with when every copy of the customer's data becomes unreadable. */
    async receiptOf(r: Selectable<DeletionsTable>) {
      return toReceipt(r, await ctx.crypto.keys.unreadableEverywhereBy(db, r.keyEpochId, r.keyDestroyedAt ? new Date(r.keyDestroyedAt) : null));
    },

    async receipt(customerId: string) {
      const r = await repo.findReceipt(db, customerId);
      if (!r) throw notFound('Deletion receipt');
      return this.receiptOf(r);
    },
  };
}

/** A deletions row as the receipt the API serves (ids, counts and times only). */
export function toReceipt(r: Selectable<DeletionsTable>, unreadable: { at: Date | null; confirmed: boolean } | null) {
  const counts = r.counts as Record<string, number>;
  const { cancelledSubscriptions, cancelledLicenses, ...softDeleted } = counts;
  return {
    customerId: r.customerId,
    deletedAt: r.deletedAt,
    deletedByKeyId: r.actorKeyId,
    deletedBy: r.actor ?? null,
    softDeleted,
    cancelled: { subscriptions: cancelledSubscriptions ?? 0, licenses: cancelledLicenses ?? 0 },
    preservedTransactions: r.preservedTransactions,
    applicationsNotified: r.applicationsNotified as string[],
    auditEventId: r.auditEventId,
    auditHash: r.auditHash,
    redaction: r.redaction,
    backupId: r.backupId,
    // Crypto-shredding: the customer's key is gone from the database; every copy that does not
    // also hold the keyring is unreadable once the last epoch key that wrapped it is destroyed.
    keyDestroyedAt: r.keyDestroyedAt ? new Date(r.keyDestroyedAt) : null,
    unreadableEverywhereBy: unreadable?.at ?? null,
    unreadableEverywhereConfirmed: unreadable?.confirmed ?? false,
  };
}

export type DeletionService = ReturnType<typeof createDeletionService>;
