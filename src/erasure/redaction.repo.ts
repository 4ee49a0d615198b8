import { type RawBuilder, sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { deleteStoredFiles } from '../storage/stored-files.repo.ts';
import { maskDetails, maskSql, nullifySql } from './masking.sql.ts';
import { type Policy, POLICY_FIELDS, type PolicyField } from './redaction-policy.ts';

export interface RedactionOutcome {
  /** Keys of the stored files deleted in this transaction. */
  blobKeys: string[];
  /** Rows changed, by table (no personal data). */
  counts: Record<string, number>;
}

const byTable = new Map<string, PolicyField[]>();
for (const f of POLICY_FIELDS) byTable.set(f.sqlTable, [...(byTable.get(f.sqlTable) ?? []), f]);

const list = (ids: string[]) => sql.join(ids.map((id) => sql`${id}`));

/**
 * Redacts every personal field of the given (soft-deleted) customers and of all their records
 * per the policy, purges their activity log except the masked `customer.deleted` entry and the
 * stored request responses that hold their data, and marks them redacted. Runs inside the
 * caller's transaction: one set-based statement per table for the whole batch.
 */
export async function redactCustomers(trx: Db, ids: string[], policy: Policy, at: Date): Promise<RedactionOutcome> {
  const counts: Record<string, number> = {};
  const blobKeys: string[] = [];
  if (ids.length === 0) return { blobKeys, counts };

  for (const [table, fields] of byTable) {
    const sets: RawBuilder<unknown>[] = [];
    for (const f of fields) {
      const action = policy[f.key];
      if (f.column.category === 'file') {
        if (action !== 'delete') continue;
        // The file's bytes go in this same transaction (they live in the database): nothing to finish after commit.
        const rows = await sql<{ k: string }>`SELECT ${sql.ref(f.sqlColumn)} AS k FROM ${sql.table(table)}
          WHERE id IN (${list(ids)}) AND ${sql.ref(f.sqlColumn)} IS NOT NULL`.execute(trx);
        const keys = rows.rows.map((r) => r.k);
        blobKeys.push(...keys);
        counts.filesDeleted = (counts.filesDeleted ?? 0) + await deleteStoredFiles(trx, keys);
        sets.push(sql`${sql.ref(f.sqlColumn)} = NULL`);
        if (table === 'customers') sets.push(sql`profile_photo_content_type = NULL`);
      } else if (action === 'nullify') {
        sets.push(sql`${sql.ref(f.sqlColumn)} = ${nullifySql(f.column.mask)}`);
      } else if (action === 'mask' && f.column.mask) {
        sets.push(sql`${sql.ref(f.sqlColumn)} = ${maskSql(f.column.mask, f.sqlColumn)}`);
      }
    }
    if (table === 'customers') sets.push(sql`redacted_at = ${at}`);
    if (sets.length === 0) continue;
    sets.push(sql`updated_at = ${at}`);
    const where = table === 'customers' ? sql`id IN (${list(ids)})` : sql`customer_id IN (${list(ids)})`;
    const r = await sql`UPDATE ${sql.table(table)} SET ${sql.join(sets)} WHERE ${where}`.execute(trx);
    counts[table] = Number(r.numAffectedRows ?? 0);
  }

  // The activity log goes, except one customer.deleted entry per customer with its details masked.
  const purged = await sql`DELETE FROM activity WHERE customer_id IN (${list(ids)}) AND type <> 'customer.deleted'`.execute(trx);
  counts.activityPurged = Number(purged.numAffectedRows ?? 0);
  const kept = await trx.selectFrom('activity').select(['id', 'details'])
    .where('customerId', 'in', ids).where('type', '=', 'customer.deleted').execute();
  if (kept.length > 0) {
    const values = kept.map((k) => sql`(${k.id}, ${JSON.stringify(maskDetails(k.details))})`);
    await sql`UPDATE activity AS a SET details = v.details::jsonb FROM (VALUES ${sql.join(values)}) AS v(id, details)
      WHERE a.id = v.id::uuid`.execute(trx);
  }
  counts.activityMasked = kept.length;

  counts.storedResponses = await purgeStoredResponses(trx, ids);
  return { blobKeys, counts };
}

/**
 * Idempotency rows keep their status (a replay still does not repeat the request) but lose the
 * stored response body: rows recorded for the customer, and any other response naming it
 * (e.g. a cancelled subscription, whose body carries the gift recipient).
 */
export async function purgeStoredResponses(trx: Db, ids: string[]): Promise<number> {
  if (ids.length === 0) return 0;
  // Every stored response that repeats a customer's data carries that customer's id
  // (src/http/idempotency.ts), so an index lookup finds them all instead of a scan of the table.
  const r = await sql`UPDATE idempotency_keys SET response_body = NULL
    WHERE customer_id IN (${list(ids)}) AND response_body IS NOT NULL AND response_body <> 'null'::jsonb`
    .execute(trx);
  return Number(r.numAffectedRows ?? 0);
}
