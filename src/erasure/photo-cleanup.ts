import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { BlobStore } from '../storage/blob-store.ts';

/**
 * Removes stored files whose deletion was committed (rows of blob_deletions): the file first,
 * then the row, so a crash at any point leaves the row and the next pass finishes the job.
 */
export async function removeBlobs(db: Db, blobs: BlobStore, keys: string[], log?: Logger): Promise<number> {
  let removed = 0;
  for (const key of keys) {
    try {
      await blobs.delete(key);
    } catch (error) {
      if ((error as Error).message !== 'invalid blob key') {
        log?.warn({ err: (error as Error).message }, 'stored file removal failed; will be retried');
        continue;
      }
      // Not a key of this store: there is no file to remove.
    }
    await db.deleteFrom('blobDeletions').where('blobKey', '=', key).execute();
    removed++;
  }
  return removed;
}

/** Finishes every pending file deletion (at start-up and in the retention job). */
export async function processPendingBlobDeletions(db: Db, blobs: BlobStore, log?: Logger): Promise<number> {
  let total = 0;
  let after = '';
  for (;;) {
    const rows = await db.selectFrom('blobDeletions').select('blobKey').where('blobKey', '>', after)
      .orderBy('blobKey').limit(500).execute();
    if (rows.length === 0) break;
    total += await removeBlobs(db, blobs, rows.map((r) => r.blobKey), log);
    after = rows.at(-1)!.blobKey;
  }
  return total;
}
