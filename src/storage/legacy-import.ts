import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import * as repo from './legacy-import.repo.ts';
import { KEY_PATTERN, type BlobStore } from './stored-files.repo.ts';

/**
 * Releases before 0007 kept photos and sealed archives as files under `<data dir>/blobs`, on
 * whichever instance handled the request. At start each instance moves its own files into the
 * database and removes them from disk. Idempotent and safe with several instances holding
 * different files: a file is imported only while a row still points at it (a customer's photo,
 * a live archive) and only if its key is not there yet; every other file (a deletion that was
 * committed but whose file step never ran, a temporary file, a photo superseded by a restore)
 * is simply removed. Pending rows of the old `blob_deletions` table are cleared likewise.
 */
export async function importLegacyFiles(db: Db, blobs: BlobStore, dataDir: string, log: Logger): Promise<{ imported: number; removed: number }> {
  const root = path.join(dataDir, 'blobs');
  let imported = 0;
  let removed = 0;
  let prefixes: string[] = [];
  try { prefixes = fs.readdirSync(root); } catch { /* nothing to import */ }
  for (const prefix of prefixes) {
    const dir = path.join(root, prefix);
    let names: string[];
    try { names = fs.readdirSync(dir); } catch { continue; }
    for (const name of names) {
      const file = path.join(dir, name);
      const key = `${prefix}/${name}`;
      if (KEY_PATTERN.test(key) && await referenced(db, prefix, key)) {
        const data = fs.readFileSync(file);
        // Committed before the file goes: a crash in between imports it again (a no-op) at next start.
        await db.transaction().execute(async (trx) => {
          if (await blobs.putAt(key, data, trx)) imported++;
        });
      }
      fs.rmSync(file, { force: true });
      removed++;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (prefixes.length) fs.rmSync(root, { recursive: true, force: true });
  // Deletions an older release committed but had not finished: the bytes, wherever they are, go.
  const pending = await repo.pendingBlobDeletions(db);
  if (pending.length) {
    await db.transaction().execute(async (trx) => {
      await blobs.deleteMany(pending, trx);
      await repo.forgetBlobDeletions(trx, pending);
    });
  }
  if (removed) log.info({ imported, removed }, 'files of the data directory moved into the database');
  return { imported, removed };
}

async function referenced(db: Db, prefix: string, key: string): Promise<boolean> {
  if (await repo.isDeletionPending(db, key)) return false;
  if (prefix === 'photos') return repo.isPhotoReferenced(db, key);
  if (prefix === 'archives') return repo.isArchiveReferenced(db, key);
  return false;
}
