import type { Ctx } from '../context.ts';
import type { DeletionStep } from './deletion.service.ts';
import { redactCustomers } from './redaction.ts';
import { effectivePolicy } from './redaction-policy.ts';
import { readSettingsSection } from '../settings/settings.repo.ts';

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
  return {
    name: 'redaction',
    phase: 'after',
    order: 10,
    receipt: (record) => ({ redaction: { ...record }, keyDestroyedAt: record.keyDestroyedAt ?? null, keyEpochId: record.keyEpochId ?? null }),
    async run(trx, c): Promise<RedactionRecord> {
      const s = await readSettingsSection(trx, 'erasure');
      if (!s.automaticPersonalDataDeletion) {
        return { ran: false, via: null, redactedAt: null, policyVersion: null, policy: null, reason: 'automatic_personal_data_deletion_off' };
      }
      const policy = effectivePolicy(s.redactionOverrides);
      // The photo's bytes (stored_files) are deleted here, in the DELETE's own transaction.
      const outcome = await redactCustomers(trx, ctx.crypto, [c.customer.id], policy, c.at);
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
