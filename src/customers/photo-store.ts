import type { FieldCrypto } from '../crypto/field-crypto.ts';
import type { Db } from '../db/database.ts';

/**
 * Profile photos at rest: the one place photo bytes are stored and read, encrypted under the
 * customer's data key (envelope; associated data binds the customer). A photo written before
 * this release (not an envelope) is read as is until the data migration re-writes it.
 *
 * Storage is the one interface below, passed in: `ctx.blobs`, the stored_files table
 * (storage/stored-files.repo.ts), written and read in the transaction passed as `db` — a photo's
 * bytes commit or roll back with the row that points at them.
 */
export interface PhotoBytesStore {
  put(data: Buffer, prefix: string, trx?: Db): Promise<string>;
  get(key: string, trx?: Db): Promise<Buffer | null>;
}

export const PHOTO_PREFIX = 'photos';
const aad = (customerId: string) => `lethe:customers.profile_photo:${customerId}`;

export function createPhotoStore(blobs: PhotoBytesStore, fc: FieldCrypto) {
  return {
    async put(db: Db, customerId: string, data: Buffer, at: Date): Promise<string> {
      const dek = await fc.keyFor(db, customerId, at);
      return blobs.put(fc.sealBytes(dek, data, aad(customerId)), PHOTO_PREFIX, db);
    },
    async get(db: Db, customerId: string, key: string): Promise<Buffer | null> {
      const stored = await blobs.get(key, db);
      if (!stored) return null;
      const dek = (await fc.keysOf(db, [customerId])).get(customerId);
      // Not an envelope (images never start with 0x01): a plaintext file of release 1, not yet migrated.
      if (stored[0] !== 0x01) return stored;
      return fc.openBytes(dek, stored, aad(customerId));
    },
    /** Re-writes a release-1 plaintext photo encrypted (data migration); returns the new key. */
    async encryptExisting(db: Db, customerId: string, key: string, at: Date): Promise<string | null> {
      const stored = await blobs.get(key, db);
      if (!stored) return null;
      const dek = await fc.keyFor(db, customerId, at);
      try { fc.openBytes(dek, stored, aad(customerId)); return null; } catch { /* plaintext */ }
      return blobs.put(fc.sealBytes(dek, stored, aad(customerId)), PHOTO_PREFIX, db);
    },
  };
}

export type PhotoStore = ReturnType<typeof createPhotoStore>;
