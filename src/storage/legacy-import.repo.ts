import type { Db } from '../db/database.ts';

/** SQL for importing an older release's data-directory files (rules in legacy-import.ts). */

export async function pendingBlobDeletions(db: Db): Promise<string[]> {
  return (await db.selectFrom('blobDeletions').select('blobKey').execute()).map((p) => p.blobKey);
}

export async function forgetBlobDeletions(trx: Db, keys: string[]): Promise<void> {
  await trx.deleteFrom('blobDeletions').where('blobKey', 'in', keys).execute();
}

export async function isDeletionPending(db: Db, key: string): Promise<boolean> {
  return (await db.selectFrom('blobDeletions').select('blobKey').where('blobKey', '=', key).executeTakeFirst()) !== undefined;
}

export async function isPhotoReferenced(db: Db, key: string): Promise<boolean> {
  return (await db.selectFrom('customers').select('id').where('profilePhotoKey', '=', key).executeTakeFirst()) !== undefined;
}

export async function isArchiveReferenced(db: Db, key: string): Promise<boolean> {
  return (await db.selectFrom('backupArchives').select('id').where('blobKey', '=', key)
    .where('destroyedAt', 'is', null).executeTakeFirst()) !== undefined;
}
