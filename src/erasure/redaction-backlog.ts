import { appendAuditBatch } from '../audit/audit.repo.ts';
import type { Ctx } from '../context.ts';
import type { Db } from '../db/database.ts';
import type { RetentionTask } from '../jobs/jobs.ts';
import { setKeyDestroyed, setRedactionRecord } from './deletion.repo.ts';
import { lockRedactionBacklog, purgeStoredResponses, redactedWithStoredResponses } from './redaction.repo.ts';
import { redactCustomers } from './redaction.ts';
import { effectivePolicy } from './redaction-policy.ts';
import type { RedactionRecord } from './redaction.step.ts';
import { readSettingsSection } from '../settings/settings.repo.ts';

export const BACKLOG_BATCH = 500;

/** One `customer.redacted` audit event per customer, appended as one batch. */
async function auditEach(trx: Db, ids: string[], data: Record<string, unknown>, actorKeyId: string | null, at: Date) {
  await appendAuditBatch(trx, ids.map((id) => ({ type: 'customer.redacted', actorKeyId, subjectType: 'customer', subjectId: id, at, data })));
}

/**
 * Part of the daily retention job: with automatic personal data deletion on, redacts every
 * customer that was soft deleted while it was off (deleted_at set, redacted_at not), in batches
 * of BACKLOG_BATCH customers per transaction (FOR UPDATE SKIP LOCKED, so several instances share
 * the work). Each customer gets a `customer.redacted` audit event and its receipt records the
 * policy applied. Stored files (photos) go in the batch's transaction. It also clears stored responses written
 * for a redacted customer after its redaction (a request that raced the DELETE).
 */
export function createRedactionBacklogTask(ctx: Ctx): RetentionTask {
  const { db } = ctx;
  return {
    name: 'redaction-backlog',
    async run(at, actorKeyId) {
      const result = { enabled: 0, redacted: 0, batches: 0, filesRemoved: 0, storedResponsesPurged: 0 };
      const settings = await readSettingsSection(db, 'erasure');
      if (!settings.automaticPersonalDataDeletion) return result;
      result.enabled = 1;
      for (;;) {
        const batch = await db.transaction().execute(async (trx) => {
          const ids = await lockRedactionBacklog(trx, BACKLOG_BATCH);
          if (ids.length === 0) return { ids, blobKeys: [] as string[] };
          // Read in the batch's transaction: a policy change between batches applies from the next batch on.
          const s = await readSettingsSection(trx, 'erasure');
          const policy = effectivePolicy(s.redactionOverrides);
          const outcome = await redactCustomers(trx, ctx.crypto, ids, policy, at);
          await auditEach(trx, ids, { via: 'backlog', policyVersion: s.policyVersion }, actorKeyId, at);
          const record: RedactionRecord = { ran: true, via: 'backlog', redactedAt: at.toISOString(), policyVersion: s.policyVersion, policy };
          await setRedactionRecord(trx, ids, { ...record });
          // Crypto-shredding: the keys went with the redaction; the receipt says when and under which epoch.
          for (const [customerId, keyEpochId] of outcome.keyEpochs) await setKeyDestroyed(trx, customerId, at, keyEpochId);
          return { ids, blobKeys: outcome.blobKeys };
        });
        if (batch.ids.length === 0) break;
        result.redacted += batch.ids.length;
        result.batches++;
        result.filesRemoved += batch.blobKeys.length;
        if (batch.ids.length < BACKLOG_BATCH) break;
      }
      // Responses stored after their customer's redaction (a POST that raced the DELETE).
      for (let after = '00000000-0000-0000-0000-000000000000'; ;) {
        const ids = await redactedWithStoredResponses(db, after, BACKLOG_BATCH);
        if (ids.length === 0) break;
        result.storedResponsesPurged += await purgeStoredResponses(db, ids);
        after = ids.at(-1)!;
      }
      ctx.log.info({ task: 'redaction-backlog', ...result }, 'redaction backlog');
      return result;
    },
  };
}
