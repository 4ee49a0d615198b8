import { type QueryCreator, type RawBuilder, sql } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { CascadeValues, DeletionPrefetch } from '../plugin/registry.ts';
import type { Db } from '../db/database.ts';
import { fromJson } from '../db/json-values.ts';
import { COLLECTIONS, type CollectionDef } from '../customers/collections.ts';
import { currentEpochJson, wrappedKeysJson } from '../crypto/customer-keys.repo.ts';
import { settingsJson } from '../settings/settings.repo.ts';
import { ident, SqlText } from '../db/sql-text.ts';

export const SOFT_DELETED = COLLECTIONS.filter((c) => c.softDelete);

export async function countLive(db: Db, customerId: string): Promise<Record<string, number>> {
  // One round trip for every collection's count.
  const parts = SOFT_DELETED.map((c) =>
    sql`(SELECT count(*) FROM ${sql.table(c.sqlTable)} WHERE customer_id = ${customerId} AND deleted_at IS NULL)`);
  const row = await sql<Record<string, string | number>>`SELECT ${sql.join(parts.map((p, i) => sql`${p} AS ${sql.ref(`c${i}`)}`))}`
    .execute(db);
  const r = row.rows[0]!;
  return Object.fromEntries(SOFT_DELETED.map((c, i) => [c.path, Number(r[`c${i}`])]));
}

/**
 * `prefetch` (a DELETE, after it locked the customer): in the same statement, what the deletion's
 * steps read next — the customer's wrapped key, the current key epoch, the settings sections (for
 * the transaction's memos: customer-keys.ts, settings.repo.ts) and each step's own read
 * (DeletionStep.prefetch), returned in order as `steps`. Text, not a Kysely builder: every DELETE.
 */
export async function blockerCounts(db: Db, customerId: string, prefetch: false | DeletionPrefetch[] = false) {
  const q = new SqlText();
  const id = q.param(customerId, 'uuid');
  const fetched = prefetch ? [
    `${wrappedKeysJson(q, [customerId])} AS wrapped_keys`, `${currentEpochJson()} AS current_epoch`, `${settingsJson()} AS settings`,
    ...prefetch.map((p, i) => `${p.select(q)} AS step_${i}`),
  ] : [];
  const [row] = await q.run<Record<string, unknown>>(db, `SELECT ${[...fetched,
    `(SELECT count(*) FROM transactions WHERE customer_id = ${id} AND status = 'pending') AS pending`,
    `(SELECT coalesce(jsonb_agg(d.a ORDER BY d.a), '[]'::jsonb) FROM (SELECT DISTINCT application_id AS a FROM licenses
        WHERE customer_id = ${id}) AS d) AS application_ids`,
    `(SELECT count(*) FROM subscriptions WHERE customer_id = ${id} AND deleted_at IS NULL AND status = 'active') AS active_subscriptions`,
    `(SELECT count(*) FROM licenses WHERE customer_id = ${id} AND deleted_at IS NULL AND status = 'active') AS active_licenses`,
    `(SELECT count(*) FROM transactions WHERE customer_id = ${id}) AS transactions`,
    `(SELECT count(*) FROM activity WHERE customer_id = ${id}) AS activity`].join(',\n    ')}`);
  const r = row!;
  return {
    pending: Number(r.pending), activeSubscriptions: Number(r.active_subscriptions),
    activeLicenses: Number(r.active_licenses), transactions: Number(r.transactions), activity: Number(r.activity),
    /** Applications the customer ever held a license for, cancelled or not (licensedApplicationIds). */
    applicationIds: fromJson<string[]>(r.application_ids),
    prefetched: { wrappedKeys: r.wrapped_keys, currentEpoch: r.current_epoch, settings: r.settings },
    steps: prefetch ? prefetch.map((_p, i) => r[`step_${i}`]) : [],
  };
}

/** Applications the customer ever held a license for, cancelled or not. */
export async function licensedApplicationIds(db: Db, customerId: string): Promise<string[]> {
  const rows = await db.selectFrom('licenses').select('applicationId').distinct()
    .where('customerId', '=', customerId).orderBy('applicationId').execute();
  return rows.map((r) => r.applicationId);
}

/**
 * The cascade in one statement (data-modifying CTEs, generated from the collection declarations):
 * every collection's live rows soft deleted, the ones with `cancelOnDelete` that were active
 * cancelled in the same UPDATE, the transactions unlinked to the customer's pseudonym, the
 * customer marked deleted. `values` (deletion steps' cascadeValues: the redaction) are written by
 * the same UPDATE of their table, so a record gets one row version. Returns the rows changed.
 */
export async function cascade(db: Db, customerId: string, ref: string, at: Date, values: CascadeValues[] = []) {
  const byTable = new Map<string, CascadeValues[]>();
  for (const v of values) byTable.set(v.sqlTable, [...(byTable.get(v.sqlTable) ?? []), v]);
  const targets = [
    ...SOFT_DELETED.map((def) => ({ sqlTable: def.sqlTable, cancel: !!def.cancelOnDelete, key: 'customer_id' })),
    { sqlTable: 'customers', cancel: false, key: 'id' },
  ];
  // Built as text (src/db/sql-text.ts): the same text for every customer, its values parameters.
  const q = new SqlText();
  const p = { at: q.param(at, 'timestamptz'), customer: q.param(customerId, 'uuid') };
  const parts = targets.map((t, i) => `c${i} AS (${tableUpdate(q, p, t, byTable.get(t.sqlTable) ?? [])})`);
  const counts = targets.map((_t, i) => `(SELECT count(*) FILTER (WHERE live) FROM c${i}) AS d${i},
    (SELECT count(*) FILTER (WHERE cancelled) FROM c${i}) AS x${i},
    (SELECT count(*) FILTER (WHERE valued) FROM c${i}) AS v${i}`);
  const [row] = await q.run<Record<string, string | number>>(db, `WITH ${parts.join(',\n')},
    tx AS (UPDATE transactions SET customer_id = NULL, customer_ref = ${q.param(ref, 'text')}, updated_at = ${p.at}
      WHERE customer_id = ${p.customer} RETURNING 1)
    SELECT ${counts.join(', ')}, (SELECT count(*) FROM tx) AS tx`);
  const deleted: Record<string, number> = {};
  const cancelled: Record<string, number> = {};
  const valued: Record<string, number> = {};
  targets.forEach((t, i) => {
    const def = SOFT_DELETED[i];
    if (def) {
      deleted[def.path] = Number(row![`d${i}`]);
      cancelled[def.table] = Number(row![`x${i}`]);
    }
    if (byTable.has(t.sqlTable)) valued[t.sqlTable] = Number(row![`v${i}`]);
  });
  return { deleted, cancelled, preserved: Number(row!.tx), valued };
}

/**
 * One table's UPDATE of the cascade: its rows that are live (soft deleted now; cancelled when
 * `cancel` and active) or that have values (written; every column not given keeps its value).
 * The self join `o` reads each row's previous values for the counts.
 */
function tableUpdate(q: SqlText, p: { at: string; customer: string }, t: { sqlTable: string; cancel: boolean; key: string }, values: CascadeValues[]): string {
  const table = ident(t.sqlTable);
  const wasActive = `(t.deleted_at IS NULL AND t.status = 'active')`;
  const sets = [`deleted_at = coalesce(t.deleted_at, ${p.at})`, `updated_at = ${p.at}`];
  if (t.cancel) {
    sets.push(`status = CASE WHEN ${wasActive} THEN 'cancelled' ELSE t.status END`,
      `cancelled_at = CASE WHEN ${wasActive} THEN ${p.at} ELSE t.cancelled_at END`);
  }
  const joins: string[] = [];
  const has: string[] = [];
  values.forEach((v, j) => {
    const alias = `v${j}`;
    const payload = JSON.stringify(v.rows.map((r) => Object.fromEntries([['id', r.id], ...r.cells.map((c, k) => [`c${k}`, c])])));
    const cols = ['id uuid', ...v.columns.map((_c, k) => `c${k} text`)].join(', ');
    joins.push(`LEFT JOIN jsonb_to_recordset(${q.param(payload, 'jsonb')}) AS ${alias}(${cols}) ON ${alias}.id = o.id`);
    const given = `${alias}.id IS NOT NULL`;
    has.push(given);
    v.columns.forEach((c, k) => sets.push(`${ident(c.sqlColumn)} = CASE WHEN ${given} THEN ${alias}.c${k}${c.json ? '::jsonb' : ''} ELSE t.${ident(c.sqlColumn)} END`));
    for (const n of v.nulls ?? []) sets.push(`${ident(n)} = CASE WHEN ${given} THEN NULL ELSE t.${ident(n)} END`);
    for (const n of v.stamps ?? []) sets.push(`${ident(n)} = CASE WHEN ${given} THEN ${p.at} ELSE t.${ident(n)} END`);
  });
  const valued = has.length ? has.join(' OR ') : 'false';
  return `UPDATE ${table} AS t SET ${sets.join(', ')}
    FROM ${table} AS o ${joins.join(' ')}
    WHERE o.id = t.id AND t.${ident(t.key)} = ${p.customer} AND (t.deleted_at IS NULL OR ${valued})
    RETURNING o.deleted_at IS NULL AS live, ${t.cancel ? `(o.deleted_at IS NULL AND o.status = 'active')` : 'false'} AS cancelled,
      (${valued}) AS valued`;
}

export interface ReceiptRow {
  customerId: string; deletedAt: Date; actorKeyId: string | null; counts: Record<string, number>; preservedTransactions: number;
  applicationsNotified: string[]; auditEventId: string; auditHash: string; redaction: Record<string, unknown> | null; backupId: string | null;
  /** The system actor when Lethe deleted on its own ("system:grace-periods"); null when a key did. */
  actor: string | null;
  keyDestroyedAt: string | null; keyEpochId: string | null;
}

/**
 * The deletion receipt (one row per deleted customer), built on `db`: the deletion runs it in the
 * statement that appends its audit events (audit.repo.ts flushAuditWith).
 */
export function receiptInsert(db: QueryCreator<Database>, r: ReceiptRow) {
  return db.insertInto('deletions').values({
    ...r, counts: JSON.stringify(r.counts), applicationsNotified: JSON.stringify(r.applicationsNotified),
    redaction: r.redaction === null ? null : JSON.stringify(r.redaction),
  });
}

export const findReceipt = (db: Db, customerId: string) =>
  db.selectFrom('deletions').selectAll().where('customerId', '=', customerId).executeTakeFirst();

/** The receipts' redaction record, once the backlog redacted those customers. */
/** The receipt's crypto-shredding columns: when the customer's data key was destroyed, under which epoch. */
export async function setKeyDestroyed(trx: Db, customerId: string, at: Date, keyEpochId: string): Promise<void> {
  await trx.updateTable('deletions').set({ keyDestroyedAt: at, keyEpochId }).where('customerId', '=', customerId).execute();
}

export async function setRedactionRecord(trx: Db, customerIds: string[], record: Record<string, unknown>): Promise<void> {
  await trx.updateTable('deletions').set({ redaction: JSON.stringify(record) }).where('customerId', 'in', customerIds).execute();
}
