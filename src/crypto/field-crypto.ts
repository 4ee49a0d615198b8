import crypto from 'node:crypto';
import type { Db } from '../db/database.ts';
import { type Encoding, encryptedColumns, toCamel } from '../erasure/data-map.ts';
import type { CustomerKeys } from './customer-keys.ts';
import { ENVELOPE_PREFIX, open, openBytes, seal, sealBytes } from './envelope.ts';

/**
 * THE module repositories encrypt and decrypt personal values through. Which columns are
 * encrypted, and how, is declared once in the data map (`encrypted` on a column); rows are the
 * camelCase objects Kysely reads and writes. The associated data of each value binds table,
 * column (and metadata key) and row id, so a value moved to another row or column does not open.
 *
 * Stored form: the envelope's text form, `env:` + base64url(version byte, iv, tag, ciphertext)
 * (envelope.ts, the one format, shared with the sealed webhook secrets). A value without the prefix is clear text: written before this release (until the data
 * migration reaches it) or a mask/kept value written at redaction, when the key goes.
 */
export const PREFIX = ENVELOPE_PREFIX;

export class UnreadableDataError extends Error {}

const aadOf = (table: string, column: string, rowId: string) => `lethe:${table}.${column}:${rowId}`;
const isSealed = (v: unknown): v is string => typeof v === 'string' && v.startsWith(PREFIX);

export function sealValue(dek: Buffer, plain: string, aad: string): string {
  return seal(dek, plain, aad);
}

export function openValue(dek: Buffer | undefined, stored: string, aad: string): string {
  if (!dek) throw new UnreadableDataError('personal data is encrypted under a key that no longer exists');
  return open(dek, stored, aad);
}

function encryptValue(dek: Buffer, enc: Encoding, value: unknown, table: string, column: string, rowId: string): unknown {
  if (value === null || value === undefined) return value;
  const aad = aadOf(table, column, rowId);
  switch (enc) {
    case 'text': return sealValue(dek, String(value), aad);
    case 'int': return sealValue(dek, String(value), aad);
    case 'json': return JSON.stringify(sealValue(dek, typeof value === 'string' ? value : JSON.stringify(value), aad));
    case 'json-values': {
      const obj = (typeof value === 'string' ? JSON.parse(value) : value) as Record<string, unknown>;
      return JSON.stringify(Object.fromEntries(Object.entries(obj).map(([k, v]) =>
        [k, sealValue(dek, JSON.stringify(v), `${aad}:${k}`)])));
    }
  }
}

function decryptValue(dek: Buffer | undefined, enc: Encoding, value: unknown, table: string, column: string, rowId: string): unknown {
  if (value === null || value === undefined) return value;
  const aad = aadOf(table, column, rowId);
  switch (enc) {
    case 'text': return isSealed(value) ? openValue(dek, value, aad) : value;
    case 'int': {
      const v = isSealed(value) ? openValue(dek, value, aad) : value;
      return v === null ? null : Number(v);
    }
    case 'json': return isSealed(value) ? JSON.parse(openValue(dek, value, aad)) as unknown : value;
    case 'json-values': {
      const obj = (typeof value === 'string' ? JSON.parse(value) : value) as Record<string, unknown>;
      return Object.fromEntries(Object.entries(obj).map(([k, v]) =>
        [k, isSealed(v) ? JSON.parse(openValue(dek, v, `${aad}:${k}`)) as unknown : v]));
    }
  }
}

export function createFieldCrypto(keys: CustomerKeys, blindIndexKey: Buffer) {
  const fc = {
    keys,

    /** The customer's key, created if it has none yet (writes). */
    keyFor: (db: Db, customerId: string, at: Date) => keys.keyFor(db, customerId, at),
    /** The keys of these customers (reads): customers without a key are absent. */
    keysOf: (db: Db, customerIds: string[]) => keys.keysOf(db, customerIds),

    /**
     * Encrypts a row's encrypted columns (camelCase keys; columns absent from `row` are left out).
     * `table` is the SQL table; `rowId` the row's id (what the associated data binds).
     */
    encryptRow<T extends Record<string, unknown>>(table: string, row: T, rowId: string, dek: Buffer): T {
      const out: Record<string, unknown> = { ...row };
      for (const [column, enc] of encryptedColumns(table)) {
        const k = toCamel(column);
        if (k in out) out[k] = encryptValue(dek, enc, out[k], table, column, rowId);
      }
      return out as T;
    },

    decryptRow<T extends Record<string, unknown>>(table: string, row: T, rowId: string, dek: Buffer | undefined): T {
      const out: Record<string, unknown> = { ...row };
      for (const [column, enc] of encryptedColumns(table)) {
        const k = toCamel(column);
        if (k in out) out[k] = decryptValue(dek, enc, out[k], table, column, rowId);
      }
      return out as T;
    },

    /** Decrypts rows of several customers with one key lookup. */
    async decryptRows<T extends Record<string, unknown>>(db: Db, table: string, rows: T[], customerOf: (r: T) => string | null, idOf: (r: T) => string): Promise<T[]> {
      const ids = rows.map(customerOf).filter((x): x is string => !!x);
      const deks = await keys.keysOf(db, ids);
      return rows.map((r) => {
        const c = customerOf(r);
        return c === null ? r : fc.decryptRow(table, r, idOf(r), deks.get(c));
      });
    },

    /** Bytes (the profile photo) under the customer's key; `aad` names what they are. */
    sealBytes: (dek: Buffer, data: Buffer, aad: string) => sealBytes(dek, data, aad),
    openBytes: (dek: Buffer | undefined, data: Buffer, aad: string) => {
      if (!dek) throw new UnreadableDataError('the file is encrypted under a key that no longer exists');
      return openBytes(dek, data, aad);
    },

    /** Blind index of an e-mail: HMAC-SHA256 of the normalized address (trimmed, NFC, lower case). */
    blindIndex(email: string | null | undefined): string | null {
      if (email === null || email === undefined) return null;
      const normalized = email.normalize('NFC').trim().toLowerCase();
      return crypto.createHmac('sha256', blindIndexKey).update(`email\n${normalized}`).digest('hex');
    },

    isSealed,
  };
  return fc;
}

export type FieldCrypto = ReturnType<typeof createFieldCrypto>;
