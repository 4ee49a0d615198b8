import type { Db } from '../db/database.ts';
import type { SqlText } from '../db/sql-text.ts';
import { paginate, type PageQuery } from '../http/pagination.ts';

/** SQL of the sealed pre-deletion archives (`backup_archives`). */

/** An archive's ciphertext place, row locked (inside the move's transaction). */
export const findSealedForUpdate = (trx: Db, id: string) =>
  trx.selectFrom('backupArchives').select(['sealed', 'blobKey', 'destroyedAt', 'keyEpochId']).where('id', '=', id).forUpdate().executeTakeFirst();

export const findArchive = (db: Db, id: string) =>
  db.selectFrom('backupArchives').selectAll().where('id', '=', id).executeTakeFirst();

/** Points a live archive at its file and drops the in-row ciphertext; false when it was moved or destroyed meanwhile. */
export async function markMoved(db: Db, id: string, blobKey: string): Promise<boolean> {
  const r = await db.updateTable('backupArchives').set({ blobKey, sealed: null })
    .where('id', '=', id).where('blobKey', 'is', null).where('destroyedAt', 'is', null).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/**
 * The archive row's insert as SQL text with its parameters in `q` (the DELETE writes it in the
 * statement that stores its file: BlobStore.putWith; text because it runs on every DELETE).
 */
export function archiveInsert(q: SqlText, a: {
  id: string; customerId: string; createdAt: Date; expiresAt: Date; blobKey: string; sizeBytes: number; keyFingerprint: string;
  /** The key epoch whose key sealed it (crypto-shredding); null: the master-derived backup key (release 1). */
  keyEpochId: string | null;
}): string {
  // The ciphertext is in stored_files (blobKey), written in the same transaction; `sealed` is for older releases' rows.
  return `insert into "backup_archives" ("id", "customer_id", "created_at", "expires_at", "blob_key", "size_bytes", "key_fingerprint", "key_epoch_id", "sealed", "destroyed_at")
    values (${q.param(a.id)}, ${q.param(a.customerId)}, ${q.param(a.createdAt)}, ${q.param(a.expiresAt)}, ${q.param(a.blobKey)}, ${q.param(a.sizeBytes)}, ${q.param(a.keyFingerprint)}, ${q.param(a.keyEpochId)}, NULL, NULL)`;
}

/** Records a release-1 archive re-sealed under an epoch key; false when another instance did it or it was destroyed. */
export async function markResealed(db: Db, id: string, keyEpochId: string, blobKey: string, sizeBytes: number): Promise<boolean> {
  const u = await db.updateTable('backupArchives').set({ keyEpochId, sizeBytes, blobKey, sealed: null })
    .where('id', '=', id).where('keyEpochId', 'is', null).where('destroyedAt', 'is', null).executeTakeFirst();
  return Number(u.numUpdatedRows) > 0;
}

/** Archives whose ciphertext is still in their row (written by an older release). */
export const pendingMoves = (db: Db) =>
  db.selectFrom('backupArchives').select('id').where('sealed', 'is not', null).where('blobKey', 'is', null).execute();

export function listLive(db: Db, filter: { customerId?: string }, page: PageQuery) {
  let q = db.selectFrom('backupArchives').select(['id', 'customerId', 'createdAt', 'expiresAt'])
    .where('destroyedAt', 'is', null);
  if (filter.customerId) q = q.where('customerId', '=', filter.customerId);
  return paginate(q, 'backup_archives', page);
}

/** Live archives past their expiry or created before `cutoff`, oldest first. */
export const expired = (db: Db, at: Date, cutoff: Date) =>
  db.selectFrom('backupArchives').select(['id', 'customerId', 'blobKey'])
    .where('destroyedAt', 'is', null)
    .where((eb) => eb.or([eb('expiresAt', '<=', at), eb('createdAt', '<=', cutoff)]))
    .orderBy('createdAt').execute();

/** Turns an archive into a tombstone; false when another instance did it first. */
export async function markDestroyed(trx: Db, id: string, at: Date): Promise<boolean> {
  const u = await trx.updateTable('backupArchives').set({ destroyedAt: at, blobKey: null, sealed: null })
    .where('id', '=', id).where('destroyedAt', 'is', null).executeTakeFirst();
  return Number(u.numUpdatedRows) > 0;
}

/** Which of the given file keys some archive row points at. */
export async function referencedBlobs(db: Db, keys: string[]): Promise<Set<string>> {
  const used = new Set<string>();
  for (let i = 0; i < keys.length; i += 5000) {
    const rows = await db.selectFrom('backupArchives').select('blobKey').where('blobKey', 'in', keys.slice(i, i + 5000)).execute();
    for (const r of rows) if (r.blobKey) used.add(r.blobKey);
  }
  return used;
}
