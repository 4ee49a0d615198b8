import crypto from 'node:crypto';
import type { Db } from '../db/database.ts';
import { SqlText } from '../db/sql-text.ts';

/**
 * THE one place file contents (profile photos, sealed archives) are written and read: rows of
 * `stored_files` (bytea, one row per file; photos are at most 1 MiB, archives a few MiB, well
 * under bytea's 1 GiB, so no chunking). Every instance sees the same files, a DELETE removes a
 * photo in its own transaction, and a database backup holds them. Encryption at rest (crypto-
 * shredding) belongs here: every byte goes through `put`/`putAt` and `get`.
 *
 * Every method takes an optional transaction: without one it uses the store's own database handle.
 */
export interface BlobStore {
  put(data: Buffer, prefix: string, trx?: Db): Promise<string>;
  /**
   * `put` inside `trx`, with the row that names the file written by the same statement (a
   * data-modifying WITH): one round trip for both. `alongside` gives the statement that follows
   * the WITH as SQL text, its parameters added to `q` (the file's come first).
   */
  putWith(data: Buffer, prefix: string, trx: Db, alongside: (q: SqlText, key: string) => string): Promise<string>;
  /** Stores under a given key (importing a file written by an older release); false if it was already there. */
  putAt(key: string, data: Buffer, trx?: Db): Promise<boolean>;
  get(key: string, trx?: Db): Promise<Buffer | null>;
  delete(key: string, trx?: Db): Promise<void>;
  deleteMany(keys: string[], trx?: Db): Promise<number>;
  exists(key: string, trx?: Db): Promise<boolean>;
  list(prefix: string, trx?: Db): Promise<string[]>;
}

export const KEY_PATTERN = /^[a-z-]+\/[0-9a-f]{32}$/;

/** Deletes files by key inside the caller's transaction (redaction uses it directly); returns how many went. */
export async function deleteStoredFiles(trx: Db, keys: string[]): Promise<number> {
  let n = 0;
  for (let i = 0; i < keys.length; i += 5000) {
    const r = await trx.deleteFrom('storedFiles').where('key', 'in', keys.slice(i, i + 5000)).executeTakeFirst();
    n += Number(r.numDeletedRows);
  }
  return n;
}

export function createStoredFiles(db: Db, now: () => Date): BlobStore {
  const check = (key: string) => { if (!KEY_PATTERN.test(key)) throw new Error('invalid blob key'); };
  const newKey = (prefix: string) => {
    const key = `${prefix}/${crypto.randomBytes(16).toString('hex')}`;
    check(key);
    return key;
  };
  const fileRow = (key: string, data: Buffer) => ({ key, content: data, sizeBytes: data.length, createdAt: now() });
  // SQL text, not a builder: putWith runs on every DELETE (its sealed archive), where building cost more CPU than the insert; put shares it.
  const fileInsert = (q: SqlText, key: string, data: Buffer) =>
    `insert into "stored_files" ("key", "content", "size_bytes", "created_at") values (${q.param(key)}, ${q.param(data)}, ${q.param(data.length)}, ${q.param(now())})`;
  return {
    async put(data, prefix, trx = db) {
      const key = newKey(prefix);
      const q = new SqlText();
      await q.run(trx, fileInsert(q, key, data));
      return key;
    },
    async putWith(data, prefix, trx, alongside) {
      const key = newKey(prefix);
      const q = new SqlText();
      const file = fileInsert(q, key, data);
      await q.run(trx, `with "put_stored_file" as (${file}) ${alongside(q, key)}`);
      return key;
    },
    async putAt(key, data, trx = db) {
      check(key);
      const r = await trx.insertInto('storedFiles').values(fileRow(key, data))
        .onConflict((oc) => oc.column('key').doNothing()).returning('key').executeTakeFirst();
      return r !== undefined;
    },
    async get(key, trx = db) {
      if (!KEY_PATTERN.test(key)) return null;
      const row = await trx.selectFrom('storedFiles').select('content').where('key', '=', key).executeTakeFirst();
      return row ? Buffer.from(row.content) : null;
    },
    async delete(key, trx = db) {
      await trx.deleteFrom('storedFiles').where('key', '=', key).execute();
    },
    deleteMany: (keys, trx = db) => deleteStoredFiles(trx, keys),
    async exists(key, trx = db) {
      return (await trx.selectFrom('storedFiles').select('key').where('key', '=', key).executeTakeFirst()) !== undefined;
    },
    async list(prefix, trx = db) {
      const rows = await trx.selectFrom('storedFiles').select('key').where('key', 'like', `${prefix}/%`).orderBy('key').execute();
      return rows.map((r) => r.key);
    },
  };
}
