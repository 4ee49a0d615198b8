import { type RawBuilder, sql } from 'kysely';
import type { FieldCrypto } from '../crypto/field-crypto.ts';
import type { Db } from '../db/database.ts';
import { toCamel } from './data-map.ts';
import { maskDetails } from './masking.ts';
import { maskValue } from './mask-values.ts';
import { type Policy, POLICY_FIELDS, type PolicyField } from './redaction-policy.ts';

export interface RedactionOutcome {
  /** Stored files to remove after commit (already recorded in blob_deletions). */
  blobKeys: string[];
  /** Rows changed, by table (no personal data). */
  counts: Record<string, number>;
  /** Customer → the epoch that wrapped its data key when the key was destroyed (crypto-shredding). */
  keyEpochs: Map<string, string>;
}

const byTable = new Map<string, PolicyField[]>();
for (const f of POLICY_FIELDS) byTable.set(f.sqlTable, [...(byTable.get(f.sqlTable) ?? []), f]);

const list = (ids: string[]) => sql.join(ids.map((id) => sql`${id}`));

/**
 * Redacts every personal field of the given (soft-deleted) customers and of all their records
 * per the policy, purges their activity log except the masked `customer.deleted` entry and the
 * stored request responses that hold their data, marks them redacted, then destroys their data
 * keys and blind-index entries (crypto-shredding). Masks and the values the policy keeps are
 * written in clear first (masks are not personal data; kept fields are what the operator chose
 * to keep): the values are decrypted here, masked in the process, and one UPDATE per table
 * writes the whole batch. Runs inside the caller's transaction.
 */
export async function redactCustomers(trx: Db, fc: FieldCrypto, ids: string[], policy: Policy, at: Date): Promise<RedactionOutcome> {
  const counts: Record<string, number> = {};
  const blobKeys: string[] = [];
  if (ids.length === 0) return { blobKeys, counts, keyEpochs: new Map() };
  const deks = await fc.keysOf(trx, ids);

  for (const [table, fields] of byTable) {
    const cols = fields.filter((f) => f.column.category !== 'file');
    const file = fields.find((f) => f.column.category === 'file');
    const isCustomers = table === 'customers';
    const where = isCustomers ? sql`id IN (${list(ids)})` : sql`customer_id IN (${list(ids)})`;
    const rows = await sql<Record<string, unknown>>`SELECT id, ${isCustomers ? sql`id AS customer_id` : sql`customer_id`}
      ${file ? sql`, ${sql.ref(file.sqlColumn)}` : sql``}
      ${cols.length ? sql`, ${sql.join(cols.map((f) => sql.ref(f.sqlColumn)))}` : sql``}
      FROM ${sql.table(table)} WHERE ${where} ORDER BY id`.execute(trx);
    if (rows.rows.length === 0) continue;

    if (file && policy[file.key] === 'delete') {
      // The file goes after commit; its key is recorded now so a crash in between is repaired at start.
      for (const r of rows.rows) {
        const k = r[toCamel(file.sqlColumn)] as string | null;
        if (!k) continue;
        blobKeys.push(k);
        await trx.insertInto('blobDeletions').values({ blobKey: k, requestedAt: at })
          .onConflict((oc) => oc.column('blobKey').doNothing()).execute();
      }
    }

    // New clear values, computed per row from the decrypted originals.
    const values: RawBuilder<unknown>[] = [];
    for (const r of rows.rows) {
      const id = r.id as string;
      const plain = readable(fc, table, r, id, deks.get(r.customerId as string));
      const cells: RawBuilder<unknown>[] = [sql`${id}::uuid`];
      for (const f of cols) {
        const v = plain[toCamel(f.sqlColumn)];
        const action = policy[f.key];
        let out: unknown = v === UNREADABLE ? null : v;
        if (v === UNREADABLE && action === 'mask' && f.column.mask) out = maskValue(f.column.mask, f.column.mask === 'metadata' ? {} : '0000');
        else if (action === 'nullify') out = f.column.mask === 'metadata' ? {} : null;
        else if (action === 'mask' && f.column.mask) out = maskValue(f.column.mask, v);
        const json = f.column.mask === 'metadata';
        cells.push(out === null || out === undefined ? sql`NULL::text` : sql`${json ? JSON.stringify(out) : String(out)}::text`);
      }
      values.push(sql`(${sql.join(cells)})`);
    }
    const sets: RawBuilder<unknown>[] = cols.map((f, i) =>
      sql`${sql.ref(f.sqlColumn)} = ${sql.raw(`v.c${i}`)}${sql.raw(f.column.mask === 'metadata' ? '::jsonb' : '')}`);
    if (file && policy[file.key] === 'delete') {
      sets.push(sql`${sql.ref(file.sqlColumn)} = NULL`);
      if (isCustomers) sets.push(sql`profile_photo_content_type = NULL`);
    }
    if (isCustomers) sets.push(sql`redacted_at = ${at}`, sql`email_bidx = NULL`);
    sets.push(sql`updated_at = ${at}`);
    const names = sql.raw(['id', ...cols.map((_f, i) => `c${i}`)].join(', '));
    const r = await sql`UPDATE ${sql.table(table)} AS t SET ${sql.join(sets)}
      FROM (VALUES ${sql.join(values)}) AS v(${names}) WHERE t.id = v.id`.execute(trx);
    counts[table] = Number(r.numAffectedRows ?? 0);
  }

  // The activity log goes, except one customer.deleted entry per customer with its details masked (in clear).
  const purged = await sql`DELETE FROM activity WHERE customer_id IN (${list(ids)}) AND type <> 'customer.deleted'`.execute(trx);
  counts.activityPurged = Number(purged.numAffectedRows ?? 0);
  const kept = await trx.selectFrom('activity').select(['id', 'customerId', 'details'])
    .where('customerId', 'in', ids).where('type', '=', 'customer.deleted').execute();
  if (kept.length > 0) {
    const values = kept.map((k) => {
      const plain = readable(fc, 'activity', k, k.id, deks.get(k.customerId));
      return sql`(${k.id}, ${JSON.stringify(plain.details === UNREADABLE ? {} : maskDetails(plain.details))})`;
    });
    await sql`UPDATE activity AS a SET details = v.details::jsonb FROM (VALUES ${sql.join(values)}) AS v(id, details)
      WHERE a.id = v.id::uuid`.execute(trx);
  }
  counts.activityMasked = kept.length;

  counts.storedResponses = await purgeStoredResponses(trx, ids);
  // Last, in the same transaction: the keys go. Whatever still holds a value encrypted under them
  // (dead row versions, WAL, dumps, backups) cannot be read once their epoch keys are destroyed too.
  const keyEpochs = await fc.keys.destroyKeys(trx, ids);
  counts.keysDestroyed = keyEpochs.size;
  return { blobKeys, counts, keyEpochs };
}

const UNREADABLE = Symbol('unreadable');

/**
 * The row decrypted; a value whose key is already gone (a deletion replayed on a database
 * restored after its epoch key was destroyed) reads as UNREADABLE: masked blind, never kept.
 */
function readable(fc: FieldCrypto, table: string, row: Record<string, unknown>, id: string, dek: Buffer | undefined): Record<string, unknown> {
  try {
    return fc.decryptRow(table, row, id, dek);
  } catch {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(row)) {
      let sealed = fc.isSealed(v);
      if (!sealed && v && typeof v === 'object') sealed = Object.values(v).some((x) => fc.isSealed(x));
      out[k] = sealed ? UNREADABLE : v;
    }
    return out;
  }
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
