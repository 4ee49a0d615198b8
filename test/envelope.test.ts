// The AES-256-GCM envelope and the field encryption driven by the data map (no database needed).
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ENVELOPE_PREFIX, ENVELOPE_V1, open, openBytes, seal, sealBytes } from '../src/crypto/envelope.ts';
import { PREFIX, openValue, sealValue } from '../src/crypto/field-crypto.ts';
import { DATA_MAP, encryptedColumns } from '../src/erasure/data-map.ts';
import { CASCADE } from '../src/erasure/cascade.ts';

describe('envelope', () => {
  const key = crypto.randomBytes(32);
  it('version byte, fresh nonce per value, round trip', () => {
    const a = sealBytes(key, Buffer.from('same'), 'aad');
    const b = sealBytes(key, Buffer.from('same'), 'aad');
    expect(a[0]).toBe(ENVELOPE_V1);
    expect(a.equals(b)).toBe(false);
    expect(openBytes(key, a, 'aad').toString()).toBe('same');
  });
  it('refuses another key, other associated data, an altered byte and an unknown version', () => {
    const s = sealBytes(key, Buffer.from('secret'), 'customers.email:1');
    expect(() => openBytes(crypto.randomBytes(32), s, 'customers.email:1')).toThrow();
    expect(() => openBytes(key, s, 'customers.email:2')).toThrow();
    const altered = Buffer.from(s); altered[20] = altered[20]! ^ 1;
    expect(() => openBytes(key, altered, 'customers.email:1')).toThrow();
    const v2 = Buffer.from(s); v2[0] = 2;
    expect(() => openBytes(key, v2, 'customers.email:1')).toThrow(/version/);
  });
  it('the text form (webhook secrets, field values) is "env:" + base64url of the same bytes', () => {
    const t = seal(key, 'whsec', 'applications.webhook_secret:app-1');
    expect(t.startsWith(ENVELOPE_PREFIX)).toBe(true);
    const raw = Buffer.from(t.slice(ENVELOPE_PREFIX.length), 'base64url');
    expect(raw[0]).toBe(ENVELOPE_V1);
    expect(openBytes(key, raw, 'applications.webhook_secret:app-1').toString()).toBe('whsec');
    expect(open(key, 'env:' + sealBytes(key, Buffer.from('ada'), 'x').toString('base64url'), 'x')).toBe('ada');
    expect(PREFIX).toBe(ENVELOPE_PREFIX);
  });
  it('a value copied to another row or column does not open', () => {
    const v = sealValue(key, 'ada@example.com', 'lethe:customers.email:row-1');
    expect(v.startsWith(PREFIX)).toBe(true);
    expect(openValue(key, v, 'lethe:customers.email:row-1')).toBe('ada@example.com');
    expect(() => openValue(key, v, 'lethe:customers.email:row-2')).toThrow();
    expect(() => openValue(key, v, 'lethe:customers.first_name:row-1')).toThrow();
  });
});

describe('the data map declares what is encrypted', () => {
  it('every personal column of the customer\'s tables is encrypted, except the stored file\'s key (its bytes are)', () => {
    const missing = Object.entries(DATA_MAP).flatMap(([t, m]) => Object.entries(m.columns)
      .filter(([, c]) => c.personal && c.category !== 'file' && !c.encrypted).map(([c]) => `${t}.${c}`));
    expect(missing).toEqual([]);
    expect(encryptedColumns('customers').map(([c]) => c)).toContain('email');
    expect(Object.fromEntries(encryptedColumns('payment_methods'))).toMatchObject({ exp_month: 'int', exp_year: 'int' });
    expect(Object.fromEntries(encryptedColumns('activity'))).toEqual({ details: 'json' });
    expect(CASCADE.customer_keys).toBe('purge');
  });
});
