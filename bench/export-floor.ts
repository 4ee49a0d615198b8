// The floor of the customers export (export_floor_rows_per_s): the same rows read with one
// `COPY (SELECT …) TO STDOUT` (psql as a subprocess, its output streamed into this process) and
// turned into the same JSONL by a minimal loop doing only the unavoidable work: decrypting a
// living customer's sealed values with its data key (unwrapped from the keyring, read with the
// row), the keyed pseudonyms of a deleted customer's fields, and the JSON serialization. The
// output goes to /dev/null, as the bench's download of the server's export does.
//
// What the floor saves against the server: HTTP, the generic per-dataset formatter, pg-copy-streams
// (psql reads the protocol in its own process). What it shares: the database's read, the split of
// COPY's text format (the export's copyFields), the crypto and pseudonym code (src/crypto/envelope.ts,
// src/erasure/pseudonym.ts, the export's own exportPseudonym), JSON.
// Timestamps are formatted by the SELECT (to_char) as JavaScript's toISOString writes them.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import pg from 'pg';
import { open, openBytes } from '../src/crypto/envelope.ts';
import type { Keyring } from '../src/crypto/keyring.ts';
import { encryptedColumns } from '../src/erasure/data-map.ts';
import { customerRef } from '../src/erasure/pseudonym.ts';
import { copyFields } from '../src/exports/export-source.ts';
import { exportColumns, exportPseudonym } from '../src/exports/exports.service.ts';

export interface ExportFloorOptions {
  dbUrl: string;
  pseudonymKey: Buffer;
  exportKey: Buffer;
  /** Unwraps customers' data keys (needed only if a living customer's value is sealed). */
  keyring: Keyring | null;
  /** Rows whose output is hashed (the first ones), to compare with the server's export. */
  hashRows: number;
}

export interface ExportFloorResult { rows: number; bytes: number; ms: number; prefixSha256: string }

type Kind = 'text' | 'time' | 'bool' | 'json' | 'number';

export async function exportFloor(o: ExportFloorOptions): Promise<ExportFloorResult> {
  const columns = exportColumns('customers');
  const c = new pg.Client({ connectionString: o.dbUrl });
  await c.connect();
  let types: Map<string, string>;
  try {
    const r = await c.query(`SELECT column_name, data_type FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = 'customers'`);
    types = new Map(r.rows.map((x: { column_name: string; data_type: string }) => [x.column_name, x.data_type]));
  } finally {
    await c.end();
  }
  const encrypted = new Map(encryptedColumns('customers'));
  // The SELECT: one output column per export column (the derived `deleted` flag computed by it),
  // then the customer's wrapped key when it is alive.
  const select: string[] = [];
  const plan: Array<{ key: string; kind: Kind; treatment: string; label: string; sqlColumn: string; enc: string | undefined }> = [];
  for (const col of columns) {
    const sqlColumn = col.label.slice(col.label.indexOf('.') + 1);
    let kind: Kind;
    if (col.derive) { select.push(`c.deleted_at IS NOT NULL`); kind = 'bool'; }
    else {
      const t = types.get(sqlColumn);
      if (!t) throw new Error(`export floor: customers.${sqlColumn} not found`);
      if (t.startsWith('timestamp')) {
        select.push(`to_char(c.${sqlColumn} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`);
        kind = 'time';
      } else {
        select.push(`c.${sqlColumn}`);
        kind = t === 'boolean' ? 'bool' : t === 'jsonb' || t === 'json' ? 'json' : /int|numeric|double|real/.test(t) ? 'number' : 'text';
      }
    }
    plan.push({ key: JSON.stringify(col.name), kind, treatment: col.treatment, label: col.label, sqlColumn, enc: encrypted.get(sqlColumn) });
  }
  const deletedIndex = columns.findIndex((x) => x.name === 'deletedAt');
  const keyIndex = select.length;
  const query = `COPY (SELECT ${select.join(', ')}, k.epoch_id, k.wrapped FROM customers c
    LEFT JOIN customer_keys k ON k.customer_id = c.id AND c.deleted_at IS NULL ORDER BY c.id) TO STDOUT`;
  const prefixes = plan.map((p, i) => `${i === 0 ? '{' : ','}${p.key}:`);

  const t0 = performance.now();
  const psql = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', o.dbUrl, '-c', query], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  psql.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number>((resolve) => psql.once('close', (code) => resolve(code ?? -1)));
  psql.stdout.setEncoding('utf8');
  const sink = fs.createWriteStream('/dev/null');
  const hash = crypto.createHash('sha256');
  let rows = 0;
  let bytes = 0;
  let rest = '';

  const value = (p: typeof plan[number], raw: string | null, dek: () => Buffer, id: string): string => {
    if (raw === null) return 'null';
    switch (p.kind) {
      case 'bool': return raw === 't' ? 'true' : 'false';
      case 'number': return raw;
      case 'time': return `"${raw}"`;
      case 'json': {
        const obj = JSON.parse(raw) as Record<string, unknown>;
        if (p.enc === 'json-values' && raw.includes('"env:')) {
          for (const [k, v] of Object.entries(obj)) {
            if (typeof v === 'string' && v.startsWith('env:')) obj[k] = JSON.parse(open(dek(), v, `lethe:customers.${p.sqlColumn}:${id}:${k}`));
          }
        }
        return JSON.stringify(obj);
      }
      case 'text': {
        if (p.enc && raw.startsWith('env:')) {
          const plain = open(dek(), raw, `lethe:customers.${p.sqlColumn}:${id}`);
          return p.enc === 'int' ? String(Number(plain)) : JSON.stringify(plain);
        }
        return JSON.stringify(raw);
      }
    }
  };

  const line = (text: string): string => {
    const f = copyFields(text, keyIndex + 2);
    const id = f[0]!;
    let out = '';
    if (f[deletedIndex] !== null) {
      // A deleted customer: pseudonyms (its data key is gone; nothing to decrypt).
      const ref = customerRef(o.pseudonymKey, id);
      for (let i = 0; i < plan.length; i++) {
        const p = plan[i]!;
        const raw = f[i]!;
        let v: string;
        if (p.treatment === 'value') v = value(p, raw, () => { throw new Error('no key'); }, id);
        else if (p.treatment === 'customer') v = `"${exportPseudonym(o.exportKey, ref, 'customer.id')}"`;
        else if (p.treatment === 'pseudonym') v = raw === null ? 'null' : `"${exportPseudonym(o.exportKey, ref, p.label)}"`;
        else v = 'null';
        out += prefixes[i] + v;
      }
    } else {
      let key: Buffer | undefined;
      const dek = () => {
        if (key) return key;
        const epoch = f[keyIndex];
        const wrapped = f[keyIndex + 1];
        if (!epoch || !wrapped || !o.keyring) throw new Error(`export floor: customer ${id} has sealed values and no readable key`);
        key = openBytes(o.keyring.epochKey(epoch), Buffer.from(wrapped.slice(2), 'hex'), `lethe-customer-key:${id}:${epoch}`);
        return key;
      };
      for (let i = 0; i < plan.length; i++) out += prefixes[i] + value(plan[i]!, f[i]!, dek, id);
    }
    return out + '}\n';
  };

  for await (const chunk of psql.stdout as AsyncIterable<string>) {
    const text = rest + chunk;
    const last = text.lastIndexOf('\n');
    if (last === -1) { rest = text; continue; }
    rest = text.slice(last + 1);
    let out = '';
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1 && nl <= last; nl = text.indexOf('\n', start)) {
      const l = line(text.slice(start, nl));
      if (rows < o.hashRows) hash.update(l);
      out += l;
      rows++;
      start = nl + 1;
    }
    const buf = Buffer.from(out, 'utf8');
    bytes += buf.length;
    if (!sink.write(buf)) await new Promise<void>((r) => sink.once('drain', () => r()));
  }
  if (rest !== '') throw new Error('export floor: COPY output ended mid-line');
  const code = await exited;
  await new Promise<void>((r) => sink.end(() => r()));
  if (code !== 0) throw new Error(`export floor: psql exited with ${code}: ${stderr.slice(-2000)}`);
  return { rows, bytes, ms: performance.now() - t0, prefixSha256: hash.digest('hex') };
}
