import crypto from 'node:crypto';

/**
 * The one AES-256-GCM envelope used for personal data at rest (field values, photos, wrapped
 * customer keys, sealed epoch keys, sealed archives):
 *
 *   version (1 byte, 0x01) | nonce (12 bytes, random per value) | ciphertext | tag (16 bytes)
 *
 * The associated data (`aad`) binds the envelope to where it belongs (table, column, row id;
 * customer id and epoch for a wrapped key), so a ciphertext copied to another row or column
 * fails authentication. The version byte lets the scheme change without guessing.
 */
export const ENVELOPE_V1 = 0x01;
const NONCE = 12;
const TAG = 16;

export class EnvelopeError extends Error {}

export function sealEnvelope(key: Buffer, plaintext: Buffer, aad: string): Buffer {
  if (key.length !== 32) throw new EnvelopeError('envelope key must be 32 bytes');
  const nonce = crypto.randomBytes(NONCE);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.of(ENVELOPE_V1), nonce, body, cipher.getAuthTag()]);
}

export function openEnvelope(key: Buffer, sealed: Buffer, aad: string): Buffer {
  if (sealed.length < 1 + NONCE + TAG) throw new EnvelopeError('envelope too short');
  if (sealed[0] !== ENVELOPE_V1) throw new EnvelopeError(`unknown envelope version ${sealed[0]}`);
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, sealed.subarray(1, 1 + NONCE));
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(1 + NONCE, sealed.length - TAG)), decipher.final()]);
  } catch {
    throw new EnvelopeError('envelope authentication failed: wrong key, or moved to another row/column, or altered');
  }
}

/** Whether a buffer looks like an envelope of a version this code reads. */
export const isEnvelope = (b: Buffer) => b.length >= 1 + NONCE + TAG && b[0] === ENVELOPE_V1;
