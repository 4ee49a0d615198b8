import crypto from 'node:crypto';
import { keyObject } from './key-object.ts';

/**
 * The one encryption format for values Lethe stores encrypted (webhook secrets today; the
 * crypto-shredding issue adds per-customer keys as a new version). A sealed value is text:
 *
 *   "env:" + base64url( version byte | iv (12) | GCM tag (16) | ciphertext )
 *
 * Version 1: AES-256-GCM under one server key (derived from the master key), with associated
 * data naming what the value is (e.g. "applications.webhook_secret:<id>"), so a ciphertext
 * copied into another row or column does not open. Unknown versions are refused, never guessed.
 */
export const ENVELOPE_PREFIX = 'env:';
const V1 = 1;

export class EnvelopeError extends Error {}

export const isSealed = (value: string): boolean => value.startsWith(ENVELOPE_PREFIX);

// The text form is the bytes form (below) in base64url behind the prefix: one implementation of the cipher.
export function seal(key: Buffer, plaintext: string, associatedData: string): string {
  return ENVELOPE_PREFIX + sealBytes(key, Buffer.from(plaintext, 'utf8'), associatedData).toString('base64url');
}

export function open(key: Buffer, sealed: string, associatedData: string): string {
  if (!isSealed(sealed)) throw new EnvelopeError('not a sealed value');
  return openBytes(key, Buffer.from(sealed.slice(ENVELOPE_PREFIX.length), 'base64url'), associatedData).toString('utf8');
}

// ---------------------------------------------------------------------------------------------
// Bytes (crypto-shredding, docs/encryption.md): the same version-1 envelope without the text
// wrapping, for what is stored as bytes — profile photos, wrapped customer keys, sealed epoch keys:
//
//   version byte (1) | iv (12) | GCM tag (16) | ciphertext
//
// `seal(key, s, ad)` is exactly "env:" + base64url(sealBytes(key, utf8(s), ad)). Per-customer keys
// need no new version: the version names the algorithm and layout, the key is the caller's
// (the customer's data key for personal values, an epoch key for a wrapped customer key).
// ---------------------------------------------------------------------------------------------

export function sealBytes(key: Buffer, plaintext: Buffer, associatedData: string): Buffer {
  if (key.length !== 32) throw new EnvelopeError('envelope v1 needs a 32-byte key');
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', keyObject(key), iv);
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.from([V1]), iv, cipher.getAuthTag(), body]);
}

export function openBytes(key: Buffer, raw: Buffer, associatedData: string): Buffer {
  if (raw.length < 1 + 12 + 16) throw new EnvelopeError('sealed value too short');
  if (raw[0] !== V1) throw new EnvelopeError(`unknown envelope version ${raw[0]}`);
  const decipher = crypto.createDecipheriv('aes-256-gcm', keyObject(key), raw.subarray(1, 13));
  decipher.setAAD(Buffer.from(associatedData, 'utf8'));
  decipher.setAuthTag(raw.subarray(13, 29));
  try {
    return Buffer.concat([decipher.update(raw.subarray(29)), decipher.final()]);
  } catch {
    throw new EnvelopeError('sealed value does not open (wrong key, altered, or sealed for another record)');
  }
}

/** The version byte of the current envelope (tests, format checks). */
export const ENVELOPE_V1 = V1;
