import crypto from 'node:crypto';

/**
 * The crypto.KeyObject of a raw key Buffer, made once per Buffer. Node builds a KeyObject inside
 * every createCipheriv/createDecipheriv/createHmac given raw bytes, which costs about ten times
 * the AES-GCM of a short value or the HMAC itself (≈ 25 µs vs 2.5 µs, docs/benchmarks.md): with
 * 12 sealed values per customer and several pseudonyms per deleted row, that was most of the
 * crypto time of a read or an export. Keyed by the Buffer's identity (a WeakMap: the entry goes
 * with the Buffer). Sound because no key Buffer is modified after it is made (nothing in src
 * zeroes or rewrites one); a caller that did so would have to drop the Buffer, not reuse it.
 */
const memo = new WeakMap<Buffer, crypto.KeyObject>();

export function keyObject(key: Buffer): crypto.KeyObject {
  let k = memo.get(key);
  if (!k) {
    k = crypto.createSecretKey(key);
    memo.set(key, k);
  }
  return k;
}
