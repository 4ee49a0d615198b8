import type { FieldCrypto } from '../crypto/field-crypto.ts';
import { encryptedColumns, type Encoding } from '../erasure/data-map.ts';
import { csvCell } from './csv.ts';
import { CUSTOMER_ID_LABEL, exportPseudonym, sqlColumnOf, type DatasetDef, type ExportColumn, type RowMeta } from './export-datasets.ts';
import type { Fields } from './export-source.ts';
import type { Kind } from './exports.repo.ts';

/**
 * THE export formatter: rows of text fields (export-source.ts) → JSONL or CSV, with the same bytes
 * as the driver's row objects gave before (a value as the driver would have parsed it, then
 * JSON.stringify / csvCell): a living customer's sealed values opened (field-crypto's decryptValue,
 * its associated data), a deleted customer's fields pseudonymized or nulled by their treatment.
 */

export type Format = 'jsonl' | 'csv';

export interface FormatKeys {
  pseudonymKey: Buffer;
  exportKey: Buffer;
  /** field-crypto's: a wrapped data key read with the row → the key (undefined: its epoch is gone), and a value opened. */
  crypto: Pick<FieldCrypto, 'unwrapKey' | 'decryptValue'>;
}

/** A JS value's JSON as a property of an object (undefined: JSON leaves it out). */
function jsonValue(v: unknown): string | undefined {
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  // What JSON.stringify does with a Date (toJSON: its ISO text, null when invalid), without its slow path.
  if (v instanceof Date && v.toJSON === Date.prototype.toJSON) return Number.isNaN(v.getTime()) ? 'null' : `"${v.toISOString()}"`;
  return JSON.stringify(v);
}

/**
 * JSONL writing without an object per row: `{"name":` / `,"name":` per column, made once per
 * export, then each value's JSON. The same text as JSON.stringify of the row's object (keys in
 * column order; test/exports-jsonl.test.ts holds the two equal), at about half the cost and garbage.
 */
export function jsonlPrefixes(columns: readonly ExportColumn[]): string[] {
  return columns.map((c, i) => `${i === 0 ? '{' : ','}${JSON.stringify(c.name)}:`);
}

export function jsonlLine(columns: readonly ExportColumn[], prefixes: readonly string[], values: readonly unknown[]): string {
  if (values.length === 0) return '{}\n';
  let line = '';
  for (let i = 0; i < values.length; i++) {
    const json = jsonValue(values[i]);
    // A value JSON leaves out of an object (undefined, a function…): the row's object decides, as before.
    if (json === undefined) return JSON.stringify(Object.fromEntries(columns.map((c, j) => [c.name, values[j]]))) + '\n';
    line += prefixes[i] + json;
  }
  return line + '}\n';
}

/** A field's text as the value the driver gave (timestamps stay their ISO text: written alike). */
function valueOf(kind: Kind, raw: string): unknown {
  switch (kind) {
    case 'json': return JSON.parse(raw) as unknown;
    case 'number': return Number(raw);
    case 'bool': return raw === 'true';
    default: return raw;
  }
}

/** A field's JSON, straight from its text. */
function jsonOf(kind: Kind, raw: string): string {
  switch (kind) {
    case 'text': return JSON.stringify(raw);
    case 'time': return `"${raw}"`;
    case 'bool': return raw === 'true' ? 'true' : 'false';
    case 'number': return JSON.stringify(Number(raw));
    case 'json': return JSON.stringify(JSON.parse(raw));
  }
}

/** A field's CSV cell, straight from its text (numbers and booleans never neutralised; text and JSON are). */
function csvOf(kind: Kind, raw: string): string {
  switch (kind) {
    case 'text': return csvCell(raw);
    case 'time': return raw;
    case 'bool': return raw === 'true' ? 'true' : 'false';
    case 'number': return String(Number(raw));
    case 'json': return csvCell(JSON.parse(raw));
  }
}

interface Plan { kind: Kind; treatment: ExportColumn['treatment']; label: string; sqlColumn: string; enc: Encoding | undefined }

/** Keys unwrapped per export, by customer (rows of one customer come together or repeat): bounded. */
const KEY_CACHE = 10_000;

export function createFormatter(def: DatasetDef, columns: readonly ExportColumn[], kinds: readonly Kind[], format: Format, keys: FormatKeys) {
  const encrypted = new Map(encryptedColumns(def.table));
  const plan: Plan[] = columns.map((c, i) => {
    const sqlColumn = sqlColumnOf(c);
    return { kind: kinds[i]!, treatment: c.treatment, label: c.label, sqlColumn, enc: c.derive ? undefined : encrypted.get(sqlColumn) };
  });
  const n = columns.length;
  const prefixes = jsonlPrefixes(columns);
  const deks = new Map<string, Buffer | undefined>();
  const csv = format === 'csv';

  const dekOf = (f: Fields, customerId: string): Buffer | undefined => {
    if (deks.has(customerId)) return deks.get(customerId);
    const epoch = f[n + 5];
    const wrapped = f[n + 6];
    const dek = epoch && wrapped ? keys.crypto.unwrapKey(customerId, epoch, Buffer.from(wrapped, 'hex')) : undefined;
    if (deks.size >= KEY_CACHE) deks.clear();
    deks.set(customerId, dek);
    return dek;
  };

  /** A column's stored value, opened when it is a living customer's sealed value. */
  const stored = (p: Plan, raw: string, f: Fields, meta: RowMeta, living: string | null): string => {
    if (living !== null && p.enc) {
      const sealed = p.kind === 'json' ? raw.includes('"env:') : raw.startsWith('env:');
      // Clear values pass as read (decryptValue returns them unchanged), but for `int`, which becomes a number.
      if (sealed || p.enc === 'int') {
        const v = keys.crypto.decryptValue(sealed ? dekOf(f, living) : undefined, p.enc, valueOf(p.kind, raw), def.table, p.sqlColumn, meta.id);
        return csv ? csvCell(v) : jsonValue(v) ?? 'null';
      }
    }
    return csv ? csvOf(p.kind, raw) : jsonOf(p.kind, raw);
  };

  const line = (f: Fields): string => {
    const meta: RowMeta = {
      id: f[n]!, customerId: f[n + 1] ?? null, customerDeleted: f[n + 2] === 'true', deleted: f[n + 3] === 'true', customerRef: f[n + 4] ?? null,
    };
    const ref = def.deletedRef(meta, keys.pseudonymKey);
    const living = def.livingCustomer?.(meta) ?? null;
    let out = '';
    for (let i = 0; i < n; i++) {
      const p = plan[i]!;
      const raw = f[i] ?? null;
      let v: string;
      if (ref === null || p.treatment === 'value') v = raw === null ? (csv ? '' : 'null') : stored(p, raw, f, meta, living);
      else if (p.treatment === 'customer' && def.customerLives?.(meta)) v = raw === null ? (csv ? '' : 'null') : stored(p, raw, f, meta, living);
      else if (p.treatment === 'customer' || (p.treatment === 'pseudonym' && raw !== null)) {
        const psn = exportPseudonym(keys.exportKey, ref, p.treatment === 'customer' ? CUSTOMER_ID_LABEL : p.label);
        v = csv ? psn : `"${psn}"`;
      } else v = csv ? '' : 'null';
      out += csv ? (i === 0 ? v : `,${v}`) : prefixes[i] + v;
    }
    return csv ? `${out}\r\n` : `${out}}\n`;
  };

  /** A chunk of rows → its text. */
  return (rows: readonly Fields[]): string => {
    let out = '';
    for (const f of rows) out += line(f);
    return out;
  };
}
