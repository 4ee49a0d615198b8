import crypto from 'node:crypto';
import type { Db } from '../db/database.ts';
import { fromJson } from '../db/json-values.ts';
import { type Encoding, encryptedColumns, toCamel } from '../erasure/data-map.ts';
import type { CustomerKeys } from './customer-keys.ts';
import { ENVELOPE_PREFIX, open, openBytes, seal, sealBytes } from './envelope.ts';
import { keyObject } from './key-object.ts';

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
      const obj = fromJson<Record<string, unknown>>(value);
      return JSON.stringify(Object.fromEntries(Object.entries(obj).map(([k, v]) =>
        [k, sealValue(dek, JSON.stringify(v), `${aad}:${k}`)])));
    }
  }
}

/** One stored value opened (a clear value passes as read; `int` becomes a number). */
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
      const obj = fromJson<Record<string, unknown>>(value);
      // Copied only when a value is sealed: clear objects (rows not yet migrated) pass as read.
      let out: Record<string, unknown> | null = null;
      for (const k of Object.keys(obj)) {
        const v = obj[k];
        if (isSealed(v)) (out ??= { ...obj })[k] = JSON.parse(openValue(dek, v, `${aad}:${k}`)) as unknown;
      }
      return out ?? obj;
    }
  }
}

/** A table's encrypted columns with their camelCase keys, computed once per table (decryptRow runs per row). */
const plans = new Map<string, Array<{ column: string; key: string; enc: Encoding }>>();
function planOf(table: string) {
  let plan = plans.get(table);
  if (!plan) {
    plan = encryptedColumns(table).map(([column, enc]) => ({ column, key: toCamel(column), enc }));
    plans.set(table, plan);
  }
  return plan;
}

function hasSealed(plan: ReturnType<typeof planOf>, row: Record<string, unknown>): boolean {
  for (const { key, enc } of plan) {
    const v = row[key];
    if (isSealed(v)) return true;
    if (enc === 'json-values' && v !== null && v !== undefined) {
      // Stored as JSON text or read as an object: its values are what is sealed.
      if (typeof v === 'string' ? v.includes(`"${PREFIX}`) : Object.values(v as object).some(isSealed)) return true;
    }
  }
  return false;
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

    /**
     * The row with its encrypted columns opened. A new object when a value changes; the row itself
     * when none does (clear values, as written before encryption at rest): no copy per row for the
     * export's millions of them.
     */
    decryptRow<T extends Record<string, unknown>>(table: string, row: T, rowId: string, dek: Buffer | undefined): T {
      let out: Record<string, unknown> | null = null;
      for (const { column, key, enc } of planOf(table)) {
        if (!(key in row)) continue;
        const value = row[key];
        const opened = decryptValue(dek, enc, value, table, column, rowId);
        if (opened !== value) (out ??= { ...row })[key] = opened;
      }
      return (out ?? row) as T;
    },

    /** One stored value opened (the export's text rows: src/exports/export-format.ts). */
    decryptValue: (dek: Buffer | undefined, enc: Encoding, value: unknown, table: string, column: string, rowId: string) =>
      decryptValue(dek, enc, value, table, column, rowId),
    /** A customer's data key read with another statement (customer-keys.ts unwrapKey). */
    unwrapKey: (customerId: string, epochId: string, wrapped: Buffer) => keys.unwrapKey(customerId, epochId, wrapped),

    /** Decrypts rows of several customers with one key lookup. */
    async decryptRows<T extends Record<string, unknown>>(db: Db, table: string, rows: T[], customerOf: (r: T) => string | null, idOf: (r: T) => string): Promise<T[]> {
      // Keys only for the rows holding a sealed value: a row in clear (not migrated yet) needs none.
      const plan = planOf(table);
      const ids: string[] = [];
      for (const r of rows) {
        const c = customerOf(r);
        if (c && hasSealed(plan, r)) ids.push(c);
      }
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
      return fc.labelledBlindIndex('email', email.normalize('NFC').trim().toLowerCase());
    },

    /**
     * Blind index of any other value, exact (no normalization): HMAC-SHA256 of `label\nvalue`. The
     * label keeps indexes of different fields apart (the external id's is not its e-mail's).
     */
    labelledBlindIndex(label: string, value: string | null | undefined): string | null {
      if (value === null || value === undefined) return null;
      return crypto.createHmac('sha256', keyObject(blindIndexKey)).update(`${label}\n${value}`).digest('hex');
    },

    isSealed,
  };
  return fc;
}

export type FieldCrypto = ReturnType<typeof createFieldCrypto>;
