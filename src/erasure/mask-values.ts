import crypto from 'node:crypto';
import type { MaskShape } from './data-map.ts';
import { randomMaskBytes } from '../crypto/random-pool.ts';

/**
 * Shape-keeping masks computed in the process (the originals are encrypted: the database cannot
 * read them). Same shapes as masking.ts: random, not derived from the original, and where a shape
 * has few values (digits, month, year) made to differ from the original.
 */
const rhex = (n: number) => randomMaskBytes(Math.ceil(n / 2)).toString('hex').slice(0, n);
const rint = (n: number) => crypto.randomInt(n);
function letters(n: number) {
  const alphabet = 'aeioubdfgklmnprs';
  return [...randomMaskBytes(n)].map((b) => alphabet[b % 16]).join('');
}

export function maskValue(shape: MaskShape, original: unknown): unknown {
  if (original === null || original === undefined) return original;
  switch (shape) {
    case 'email': return `masked.${rhex(10)}@${rhex(12)}.invalid`;
    case 'name': { const s = letters(8); return s[0]!.toUpperCase() + s.slice(1); }
    case 'phone': return `+999 ${[...randomMaskBytes(9)].map((b) => String(b % 10)).join('')}`;
    case 'text': return `masked-${rhex(12)}`;
    case 'token': return `masked_${crypto.randomUUID().replace(/-/g, '')}`;
    case 'digits': {
      const len = Math.max(1, Math.min(String(original).length, 32));
      let m = [...randomMaskBytes(len)].map((b) => String(b % 10)).join('');
      if (m === String(original)) m = m.replace(/[0-9]/g, (d) => String((Number(d) + 1) % 10));
      return m;
    }
    case 'month': return ((Number(original) + rint(11)) % 12) + 1;
    case 'year': return 2000 + ((((Number(original) - 1999 + rint(99)) % 100) + 100) % 100);
    case 'ip': return String(original).includes(':')
      ? `2001:db8:${rhex(4)}:${rhex(4)}::${rhex(4)}`
      : `198.18.${rint(256)}.${1 + rint(254)}`;
    case 'metadata': {
      const obj = (original ?? {}) as Record<string, unknown>;
      return Object.fromEntries(Object.keys(obj).map((k) => [k, `masked-${rhex(12)}`]));
    }
  }
}
