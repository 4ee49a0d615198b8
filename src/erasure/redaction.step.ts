import type { Ctx } from '../context.ts';
import type { DeletionContext, DeletionStep } from './deletion.service.ts';
import type { CascadeValues } from '../plugin/registry.ts';
import { asCascadeValues, finishRedaction, parsePersonalRowsRead, personalRowsRead, redactCustomers, redactedValuesOf } from './redaction.ts';
import type { PersonalRows } from './redaction.repo.ts';
import type { Db } from '../db/database.ts';
import { effectivePolicy, type Policy } from './redaction-policy.ts';
import { readSettingsSection, type SettingsSectionOf } from '../settings/settings.repo.ts';

/** What the receipt records about redaction (`redaction` on the deletions row): ids, versions, actions only. */
export interface RedactionRecord {
  ran: boolean;
  /** 'deletion': in the DELETE transaction; 'backlog': later, by the retention job. */
  via: 'deletion' | 'backlog' | null;
  redactedAt: string | null;
  policyVersion: number | null;
  /** The effective policy applied, snapshotted: a later policy change does not alter it. */
  policy: Record<string, string> | null;
  reason?: string;
  /** Crypto-shredding: when the customer's data key was destroyed, and the epoch that last wrapped it. */
  keyDestroyedAt?: string | null;
  keyEpochId?: string | null;
}

/**
 * Redaction as part of DELETE (phase 'after': the records are soft deleted, the customer.deleted
 * activity entry is written). With automatic personal data deletion off it records that it did
 * not run; the redaction backlog job catches up once the setting is turned on.
 */
export function createRedactionStep(ctx: Ctx): DeletionStep<RedactionRecord> {
  // Per deletion: the settings read and the values the cascade wrote (cascadeValues → run).
  const prepared = new WeakMap<DeletionContext, {
    s: SettingsSectionOf<'erasure'>; policy: Policy | null; values: Awaited<ReturnType<typeof redactedValuesOf>> | null;
  }>();
  // Per deletion transaction: the personal rows its blocker statement read (prefetch → cascadeValues).
  const preread = new WeakMap<Db, PersonalRows>();
  return {
    name: 'redaction',
    phase: 'after',
    order: 10,
    // The personal rows are read with the blockers (the customer is locked, nobody changes them
    // until commit); also when automatic deletion is off, which the settings in that same
    // statement tell: unused then.
    async prefetch(trx, customerId) {
      return {
        select: (q) => personalRowsRead(q, [customerId]),
        adopt: (value) => { preread.set(trx, parsePersonalRowsRead(value)); },
      };
    },
    receipt: (record) => ({ redaction: { ...record }, keyDestroyedAt: record.keyDestroyedAt ?? null, keyEpochId: record.keyEpochId ?? null }),
    /**
     * Before the cascade: the new values of every personal field (the records are read here; the
     * photo's bytes, stored_files, are deleted here, in the DELETE's own transaction), written by
     * the cascade's UPDATE of each table — soft deleted and redacted in one row version.
     */
    async cascadeValues(trx, c): Promise<CascadeValues[]> {
      const s = await readSettingsSection(trx, 'erasure');
      if (!s.automaticPersonalDataDeletion) {
        prepared.set(c, { s, policy: null, values: null });
        return [];
      }
      const policy = effectivePolicy(s.redactionOverrides);
      const values = await redactedValuesOf(trx, ctx.crypto, [c.customer.id], policy, c.at, preread.get(trx));
      prepared.set(c, { s, policy, values });
      // The customer.deleted entry is masked by this transaction anyway: written masked by run's
      // statement, it is never sealed under a key that is destroyed a statement later.
      c.deletedEntryWriter = 'redaction';
      return values.writes.map((w) => asCascadeValues(w.table, w.write));
    },
    async run(trx, c): Promise<RedactionRecord> {
      const p = prepared.get(c);
      const s = p?.s ?? await readSettingsSection(trx, 'erasure');
      if (!s.automaticPersonalDataDeletion) {
        return { ran: false, via: null, redactedAt: null, policyVersion: null, policy: null, reason: 'automatic_personal_data_deletion_off' };
      }
      const policy = p?.policy ?? effectivePolicy(s.redactionOverrides);
      // With cascadeValues (a DELETE), the records were redacted by the cascade: the activity log,
      // the stored responses and the key remain, and the customer.deleted entry is written here.
      if (p?.values && !c.deletedEntry) throw new Error('redaction: the deletion set no customer.deleted entry');
      const outcome = p?.values
        ? await finishRedaction(trx, ctx.crypto, [c.customer.id], {
          writes: p.values.writes, blobKeys: p.values.blobKeys, kept: p.values.kept,
          written: Object.fromEntries(p.values.writes.map((w) => [w.table, w.write.rows.length])),
          newEntries: [{ ...c.deletedEntry!, customerId: c.customer.id, at: c.at }],
        })
        : await redactCustomers(trx, ctx.crypto, [c.customer.id], policy, c.at);
      const keyEpochId = outcome.keyEpochs.get(c.customer.id) ?? null;
      return {
        ran: true, via: 'deletion', redactedAt: c.at.toISOString(), policyVersion: s.policyVersion, policy,
        keyDestroyedAt: keyEpochId ? c.at.toISOString() : null, keyEpochId,
      };
    },
    async preview(db) {
      const s = await readSettingsSection(db, 'erasure');
      const policy = effectivePolicy(s.redactionOverrides);
      const actions: Record<string, number> = {};
      for (const a of Object.values(policy)) actions[a] = (actions[a] ?? 0) + 1;
      return { automatic: s.automaticPersonalDataDeletion, policyVersion: s.policyVersion, fieldActions: actions };
    },
  };
}
