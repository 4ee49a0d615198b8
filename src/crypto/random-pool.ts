import crypto from 'node:crypto';

/**
 * Random bytes for masks (not keys or IVs), taken from a pool filled 4 KiB at a time by the
 * CSPRNG — as crypto.randomUUID caches its entropy — instead of one randomBytes call (and its
 * Buffer) per masked value: a DELETE masks a dozen values, the redaction backlog thousands.
 */
const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let offset = POOL_SIZE;

/** `n` (≤ 4096) fresh random bytes, as a copy: the pool never hands out the same bytes twice. */
export function randomMaskBytes(n: number): Buffer {
  if (n > POOL_SIZE) return crypto.randomBytes(n);
  if (offset + n > POOL_SIZE) {
    crypto.randomFillSync(pool);
    offset = 0;
  }
  const out = Buffer.from(pool.subarray(offset, offset + n));
  offset += n;
  return out;
}
