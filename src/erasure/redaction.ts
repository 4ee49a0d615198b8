import type { FieldCrypto } from '../crypto/field-crypto.ts';
import type { Db } from '../db/database.ts';
import { toCamel } from './data-map.ts';
import { maskValue } from './mask-values.ts';
import { maskDetails } from './masking.sql.ts';
import { deleteStoredFiles } from '../storage/stored-files.repo.ts';
import * as repo from './redaction.repo.ts';
import { type Policy, POLICY_FIELDS, type PolicyField } from './redaction-policy.ts';

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
  const counts: Record<string, number> = {};
  const blobKeys: string[] = [];
  if (ids.length === 0) return { blobKeys, counts, keyEpochs: new Map() };
  const deks = await fc.keysOf(trx, ids);

  for (const [table, fields] of byTable) {
    const cols = fields.filter((f) => f.column.category !== 'file');
    const file = fields.find((f) => f.column.category === 'file');
    const rows = await repo.personalRows(trx, table, ids, cols.map((f) => f.sqlColumn), file?.sqlColumn);
    if (rows.length === 0) continue;

    const deleteFile = !!file && policy[file.key] === 'delete';
    if (file && deleteFile) {
      // The file's bytes go in this same transaction (stored_files): nothing to finish after commit.
      const keys = rows.map((r) => r[toCamel(file.sqlColumn)] as string | null).filter((k): k is string => !!k);
      blobKeys.push(...keys);
      counts.filesDeleted = (counts.filesDeleted ?? 0) + await deleteStoredFiles(trx, keys);
    }

    // New clear values, computed per row from the decrypted originals.
    const values = rows.map((r) => {
      const id = r.id as string;
      const plain = readable(fc, table, r, id, deks.get(r.customerId as string));
      const cells = cols.map((f) => {
        const v = plain[toCamel(f.sqlColumn)];
        const action = policy[f.key];
        let out: unknown = v === UNREADABLE ? null : v;
        if (v === UNREADABLE && action === 'mask' && f.column.mask) out = maskValue(f.column.mask, f.column.mask === 'metadata' ? {} : '0000');
        else if (action === 'nullify') out = f.column.mask === 'metadata' ? {} : null;
        else if (action === 'mask' && f.column.mask) out = maskValue(f.column.mask, v);
        return out === null || out === undefined ? null : f.column.mask === 'metadata' ? JSON.stringify(out) : String(out);
      });
      return { id, cells };
    });
    counts[table] = await repo.writeRedactedValues(trx, table, {
      columns: cols.map((f) => ({ sqlColumn: f.sqlColumn, json: f.column.mask === 'metadata' })),
      rows: values, fileColumn: deleteFile ? file!.sqlColumn : undefined, at,
    });
  }

  // The activity log goes, except one customer.deleted entry per customer with its details masked (in clear).
  counts.activityPurged = await repo.purgeActivity(trx, ids);
  const kept = await repo.deletedEntries(trx, ids);
  await repo.setActivityDetails(trx, kept.map((k) => {
    const plain = readable(fc, 'activity', k, k.id, deks.get(k.customerId));
    return { id: k.id, details: plain.details === UNREADABLE ? {} : maskDetails(plain.details) };
  }));
  counts.activityMasked = kept.length;

  counts.storedResponses = await repo.purgeStoredResponses(trx, ids);
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

