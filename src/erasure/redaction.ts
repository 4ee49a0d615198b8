import type { FieldCrypto } from '../crypto/field-crypto.ts';
import type { Db } from '../db/database.ts';
import type { SqlText } from '../db/sql-text.ts';
import { toCamel } from './data-map.ts';
import { maskValue } from './mask-values.ts';
import { maskDetails } from './masking.sql.ts';
import { deleteStoredFiles } from '../storage/stored-files.repo.ts';
import * as repo from './redaction.repo.ts';
import { type Policy, POLICY_FIELDS, type PolicyField } from './redaction-policy.ts';
import type { CascadeValues } from '../plugin/registry.ts';

export interface RedactionOutcome {
  /** Keys of the stored files deleted in this transaction. */
  blobKeys: string[];
  /** Rows changed, by table (no personal data). */
  counts: Record<string, number>;
  /** Customer → the epoch that wrapped its data key when the key was destroyed (crypto-shredding). */
  keyEpochs: Map<string, string>;
}

const byTable = new Map<string, PolicyField[]>();
for (const f of POLICY_FIELDS) byTable.set(f.sqlTable, [...(byTable.get(f.sqlTable) ?? []), f]);

/**
 * Redacts every personal field of the given (soft-deleted) customers and of all their records
 * per the policy, purges their activity log except the masked `customer.deleted` entry and the
 * stored request responses that hold their data, marks them redacted, then destroys their data
 * keys and blind-index entries (crypto-shredding). Masks and the values the policy keeps are
 * written in clear first (masks are not personal data; kept fields are what the operator chose
 * to keep): the values are decrypted here, masked in the process (the database cannot read
 * them), and one UPDATE per table (redaction.repo.ts) writes the whole batch. Runs inside the
 * caller's transaction.
 */
export async function redactCustomers(trx: Db, fc: FieldCrypto, ids: string[], policy: Policy, at: Date): Promise<RedactionOutcome> {
  if (ids.length === 0) return { blobKeys: [], counts: {}, keyEpochs: new Map() };
  const prepared = await redactedValuesOf(trx, fc, ids, policy, at);
  return finishRedaction(trx, fc, ids, prepared);
}

/**
 * The first half of redactCustomers: every table's personal rows read (one statement) and their
 * new values computed; a deleted photo's bytes go (stored_files). A DELETE has its cascade write
 * these values (one row version per record) and then calls finishRedaction.
 */
export async function redactedValuesOf(trx: Db, fc: FieldCrypto, ids: string[], policy: Policy, at: Date, preread?: repo.PersonalRows) {
  const blobKeys: string[] = [];
  const deks = await fc.keysOf(trx, ids);
  const tables = personalTables();
  const read = preread ?? await repo.personalRowsOfAll(trx, tables, ids);
  const writes: Array<{ table: string; write: repo.RedactionWrite }> = [];
  for (const { table, fields } of tables) {
    const rows = read.rows.get(table) ?? [];
    if (rows.length === 0) continue;
    writes.push({ table, write: await redactedValues(trx, fc, { table, fields, rows, deks, policy, at, blobKeys, reseal: false }) });
  }
  return { writes, blobKeys, kept: read.kept, at };
}

/** The personal columns read of each table of the policy (its file column first); the policy's fields are fixed. */
let tablesRead: Array<{ table: string; fields: PolicyField[]; columns: string[] }> | null = null;
const personalTables = () => (tablesRead ??= [...byTable].map(([table, fields]) => {
  const { cols, file } = columnsOf(fields);
  return { table, fields, columns: [...(file ? [file.sqlColumn] : []), ...cols.map((f) => f.sqlColumn)] };
}));

/** redactedValuesOf's read as an expression of another statement (a DELETE's blocker read), and its value's parse. */
export const personalRowsRead = (q: SqlText, ids: string[]) => repo.personalRowsJson(q, personalTables(), ids);
export const parsePersonalRowsRead = (value: unknown) => repo.parsePersonalRows(value, personalTables());

/** A table's new values as the cascade's values (deletion.repo.ts cascade): the same columns redactionUpdate sets. */
export function asCascadeValues(table: string, w: repo.RedactionWrite): CascadeValues {
  const isCustomers = table === 'customers';
  return {
    sqlTable: table, columns: w.columns, rows: w.rows,
    nulls: [...(w.fileColumn ? [w.fileColumn, ...(isCustomers ? ['profile_photo_content_type'] : [])] : []),
      ...(isCustomers ? ['email_bidx', 'external_id_bidx'] : [])],
    stamps: isCustomers ? ['redacted_at'] : [],
  };
}

/**
 * The second half: the tables' new values written (unless `written`: the cascade wrote them),
 * the activity log purged except the customer.deleted entries, whose details are masked (in
 * clear), the stored responses purged — one statement — and the data keys destroyed.
 * `kept`: the customer.deleted entries, read now when not given. `newEntries`: customer.deleted
 * entries not written yet (a DELETE's own), inserted by the same statement with masked details.
 */
export async function finishRedaction(trx: Db, fc: FieldCrypto, ids: string[], p: {
  writes: Array<{ table: string; write: repo.RedactionWrite }>; blobKeys: string[];
  kept?: Array<{ id: string; customerId: string; details: unknown }>;
  written?: Record<string, number>;
  newEntries?: Array<{ id: string; customerId: string; details: Record<string, unknown>; at: Date }>;
}): Promise<RedactionOutcome> {
  const counts: Record<string, number> = {};
  const blobKeys = p.blobKeys;
  const deks = await fc.keysOf(trx, ids);
  const kept = p.kept ?? (await repo.personalRowsOfAll(trx, [], ids)).kept;
  // The activity log goes, except one customer.deleted entry per customer with its details masked (in clear).
  const details = kept.map((k) => {
    const plain = readable(fc, 'activity', k, k.id, deks.get(k.customerId));
    return { id: k.id, details: plain.details === UNREADABLE ? {} : maskDetails(plain.details) };
  });
  // One write: every table's new values (if not written yet), the activity purge and masking, the
  // stored responses, and last the data keys. Whatever still holds a value encrypted under them
  // (dead row versions, WAL, dumps, backups) cannot be read once their epoch keys are destroyed too.
  fc.keys.keysDestroyed(trx, ids);
  const inserted = (p.newEntries ?? []).map((e) => ({ id: e.id, customerId: e.customerId, details: maskDetails(e.details), at: e.at }));
  const written = await repo.writeCustomersRedaction(trx, ids, p.written ? [] : p.writes, details, inserted);
  Object.assign(counts, p.written ?? written.tables);
  counts.activityPurged = written.activityPurged;
  counts.activityMasked = written.activityMasked;
  counts.storedResponses = written.storedResponses;
  const keyEpochs = written.keyEpochs;
  counts.keysDestroyed = keyEpochs.size;
  return { blobKeys, counts, keyEpochs };
}

/**
 * Redacts one (soft-deleted) record of a living customer's collection per the policy, through the
 * same code as a customer's redaction (redactRows), and purges the stored request responses that
 * repeat it. The customer's key stays (the customer lives on) and so does its activity log: the
 * record's new values are sealed again under that key, so at rest it reads like every other value
 * of the customer until the customer itself goes.
 */
export async function redactRecord(trx: Db, fc: FieldCrypto, sqlTable: string, customerId: string, recordId: string, policy: Policy, at: Date): Promise<Omit<RedactionOutcome, 'keyEpochs'>> {
  const blobKeys: string[] = [];
  const counts: Record<string, number> = {};
  const fields = byTable.get(sqlTable) ?? [];
  const { cols, file } = columnsOf(fields);
  const rows = fields.length === 0 ? [] : await repo.personalRows(trx, sqlTable, [customerId], cols.map((f) => f.sqlColumn), file?.sqlColumn, recordId);
  if (rows.length > 0) {
    const deks = await fc.keysOf(trx, [customerId]);
    counts[sqlTable] = await repo.writeRedactedValues(trx, sqlTable,
      await redactedValues(trx, fc, { table: sqlTable, fields, rows, deks, policy, at, blobKeys, reseal: true }));
  }
  counts.storedResponses = await purgeRecordResponses(trx, fc, customerId, recordId);
  return { blobKeys, counts };
}

/**
 * Stored responses naming the record (its creation, a cancellation) lose their body. They are
 * sealed under the customer's key (http/idempotency.ts), so they are opened here to find its id.
 */
async function purgeRecordResponses(trx: Db, fc: FieldCrypto, customerId: string, recordId: string): Promise<number> {
  const dek = (await fc.keysOf(trx, [customerId])).get(customerId);
  let n = 0;
  for (const r of await repo.storedResponsesOf(trx, customerId)) {
    const plain = readable(fc, 'idempotency_keys', { responseBody: r.responseBody }, `${r.apiKeyId}/${r.key}`, dek).responseBody;
    const names = plain === UNREADABLE || (plain !== null && typeof plain === 'object' && (plain as { id?: unknown }).id === recordId);
    if (!names) continue;
    await repo.clearStoredResponse(trx, r.apiKeyId, r.key);
    n++;
  }
  return n;
}

const columnsOf = (fields: PolicyField[]) => ({
  cols: fields.filter((f) => f.column.category !== 'file'),
  file: fields.find((f) => f.column.category === 'file'),
});

/**
 * THE redaction of rows of one table per the policy, shared by a customer's cascade and a single
 * record's erasure: every personal field of the data map gets its action (nullify, mask, delete the
 * file). Values are decrypted here and masked in the process (the database cannot read them); the
 * caller writes the batch (one UPDATE per table, redaction.repo.ts). `reseal`: the new values are
 * sealed under the customer's key (a record of a living customer); otherwise written in clear
 * (the key is destroyed right after). A deleted file's bytes (stored_files) go here.
 */
async function redactedValues(trx: Db, fc: FieldCrypto, o: {
  table: string; fields: PolicyField[]; rows: Array<Record<string, unknown>>; deks: Map<string, Buffer>;
  policy: Policy; at: Date; blobKeys: string[]; reseal: boolean;
}): Promise<repo.RedactionWrite> {
  const { table, policy, at } = o;
  const { cols, file } = columnsOf(o.fields);
  const deleteFile = !!file && policy[file.key] === 'delete';
  if (file && deleteFile) {
    // The file's bytes go in this same transaction (stored_files): nothing to finish after commit.
    const keys = o.rows.map((r) => r[toCamel(file.sqlColumn)] as string | null).filter((k): k is string => !!k);
    o.blobKeys.push(...keys);
    await deleteStoredFiles(trx, keys);
  }

  // New values, computed per row from the decrypted originals.
  const values = o.rows.map((r) => {
    const id = r.id as string;
    const dek = o.deks.get(r.customerId as string);
    const plain = readable(fc, table, r, id, dek);
    const cells = cols.map((f) => {
      const v = plain[toCamel(f.sqlColumn)];
      const action = policy[f.key];
      let out: unknown = v === UNREADABLE ? null : v;
      if (v === UNREADABLE && action === 'mask' && f.column.mask) out = maskValue(f.column.mask, f.column.mask === 'metadata' ? {} : '0000');
      else if (action === 'nullify') out = f.column.mask === 'metadata' ? {} : null;
      else if (action === 'mask' && f.column.mask) out = maskValue(f.column.mask, v);
      if (out === null || out === undefined) return null;
      if (o.reseal && dek && f.column.encrypted) {
        const k = toCamel(f.sqlColumn);
        return String(fc.encryptRow(table, { [k]: out }, id, dek)[k]);
      }
      return f.column.mask === 'metadata' ? JSON.stringify(out) : String(out);
    });
    return { id, cells };
  });
  return {
    columns: cols.map((f) => ({ sqlColumn: f.sqlColumn, json: f.column.mask === 'metadata' })),
    rows: values, fileColumn: deleteFile ? file!.sqlColumn : undefined, at,
  };
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

