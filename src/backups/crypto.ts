import crypto from 'node:crypto';
import { keyObject } from '../crypto/key-object.ts';

/**
 * AES-256-GCM sealing for backups. Keys come from the server master key (secrets.backupKey, an
 * HKDF derivation); nothing here is a constant key.
 */

const ARCHIVE_MAGIC = Buffer.from('LSA1');

export class BackupIntegrityError extends Error {}

/** Seals one document: magic | nonce(12) | tag(16) | ciphertext. `context` binds it to its id (AAD). */
export function seal(key: Buffer, plaintext: Buffer, context: string): Buffer {
  const nonce = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', keyObject(key), nonce);
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([ARCHIVE_MAGIC, nonce, cipher.getAuthTag(), body]);
}

export function open(key: Buffer, sealed: Buffer, context: string): Buffer {
  if (sealed.length < 32 || !sealed.subarray(0, 4).equals(ARCHIVE_MAGIC)) {
    throw new BackupIntegrityError('not a sealed Lethe archive');
  }
  const decipher = crypto.createDecipheriv('aes-256-gcm', keyObject(key), sealed.subarray(4, 16));
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(sealed.subarray(16, 32));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(32)), decipher.final()]);
  } catch {
    throw new BackupIntegrityError('archive authentication failed: altered, or sealed under another master key');
  }
}

/** A per-file key, so no two backup files share a (key, nonce) pair. */
export function fileKey(backupKey: Buffer, salt: Buffer): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', backupKey, salt, Buffer.from('lethe/database-backup/v1'), 32));
}

/** Chunk nonce: 4 zero bytes then the chunk index (unique per file key). */
export function chunkNonce(index: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64BE(BigInt(index), 4);
  return n;
}

/** Associated data of a chunk: the header's digest, the index and the final flag (truncation and reordering fail). */
export function chunkAad(headerDigest: Buffer, index: number, final: boolean): Buffer {
  const b = Buffer.alloc(headerDigest.length + 9);
  headerDigest.copy(b, 0);
  b.writeBigUInt64BE(BigInt(index), headerDigest.length);
  b.writeUInt8(final ? 1 : 0, headerDigest.length + 8);
  return b;
}

export function encryptChunk(key: Buffer, headerDigest: Buffer, index: number, final: boolean, plaintext: Buffer) {
  const cipher = crypto.createCipheriv('aes-256-gcm', key, chunkNonce(index));
  cipher.setAAD(chunkAad(headerDigest, index, final));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { body, tag: cipher.getAuthTag() };
}

export function decryptChunk(key: Buffer, headerDigest: Buffer, index: number, final: boolean, body: Buffer, tag: Buffer): Buffer {
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, chunkNonce(index));
  decipher.setAAD(chunkAad(headerDigest, index, final));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw new BackupIntegrityError(`backup authentication failed at chunk ${index}: the file was altered or sealed under another master key`);
  }
}
