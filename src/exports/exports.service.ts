import { Readable } from 'node:stream';
import { Counter, type Registry } from 'prom-client';
import { appendAudit } from '../audit/audit.repo.ts';
import type { Ctx } from '../context.ts';
import type { Db } from '../db/database.ts';
import { COLLECTIONS } from '../customers/collections.ts';
import { DATA_MAP, toCamel, type Column } from '../erasure/data-map.ts';
import { customerRef } from '../erasure/pseudonym.ts';
import { notFound } from '../http/errors.ts';
import { hmacHex } from '../secrets.ts';
import { csvLine } from './csv.ts';
import * as repo from './exports.repo.ts';

/** Every collection with a soft delete (all but transactions, which have their own dataset) is a dataset too. */
const COLLECTION_DATASETS = COLLECTIONS.filter((c) => c.softDelete);
export const DATASETS: readonly string[] = ['customers', 'transactions', 'activity', ...COLLECTION_DATASETS.map((c) => c.path)];
export type Dataset = string;
export const FORMATS = ['jsonl', 'csv'] as const;
export type Format = typeof FORMATS[number];

export const CONTENT_TYPES: Record<Format, string> = {
  jsonl: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8; header=present',
};

/** Rows read per query: one batch is all an export holds in memory. */
export const BATCH_SIZE = 1000;

/**
 * How a column's value leaves the export when the row belongs to a deleted customer:
 * - `value`: as stored (not personal: ids of other records, amounts, states, timestamps);
 * - `customer`: the customer's id (customers.id, *.customer_id) → the customer's pseudonymous id;
 * - `pseudonym`: personal and identifying (name, e-mail, tin…) → a per-customer, per-field pseudonym;
 * - `null`: personal but not identifying on its own (IPs, organization, metadata, details) → null.
 * Living customers' rows are always exported as stored.
 */
export type Treatment = 'value' | 'customer' | 'pseudonym' | 'null';

export interface ExportColumn {
  /** camelCase field name: JSONL key and CSV header. */
  name: string;
  /** `entity.sql_column`, the pseudonym's purpose label. */
  label: string;
  treatment: Treatment;
  /** A field computed from the row rather than read from a column (the customers' `deleted` flag). */
  derive?: (row: repo.Row) => unknown;
}

interface DatasetDef {
  table: string;
  /** SQL column holding the customer's id. */
  customerColumn: string;
  read(db: Db, after: repo.Position | null, limit: number): Promise<repo.Row[]>;
  position(row: repo.Row): repo.Position;
  /** The customer's stored pseudonymous reference when the row belongs to a deleted customer, else null. */
  deletedRef(row: repo.Row, pseudonymKey: Buffer): string | null;
  /**
   * A record removed one by one while its customer lives: its personal fields are treated as a
   * deleted customer's (deletedRef gives the reference), its customer id stays as stored.
   */
  customerLives?(row: repo.Row): boolean;
  /** Adds the `deleted` flag after this column (customers: deleted_at; collections: deleted_at). */
  deletedFlag?: boolean;
  /** Whose key decrypts the row's personal values: a living customer's (a deleted one's are pseudonymized, never read). */
  livingCustomer?(row: repo.Row): string | null;
}

const byTimestamp = (row: repo.Row): repo.Position => ({ ts: row.positionTs as string, id: row.id });

/** A collection's dataset, generated from its declaration (collections.ts) and the data map. */
function collectionDataset(sqlTable: string): DatasetDef {
  return {
    table: sqlTable, customerColumn: 'customer_id', read: repo.collectionAfter(sqlTable),
    position: (row) => ({ id: row.id }),
    deletedRef: (row, key) => (row.customerDeletedAt || row.deletedAt ? customerRef(key, row.customerId as string) : null),
    customerLives: (row) => !row.customerDeletedAt,
    deletedFlag: true,
    livingCustomer: (row) => (row.customerDeletedAt ? null : row.customerId as string),
  };
}

const DEFS: Record<Dataset, DatasetDef> = {
  ...Object.fromEntries(COLLECTION_DATASETS.map((c) => [c.path, collectionDataset(c.sqlTable)])),
  customers: {
    table: 'customers', customerColumn: 'id', read: repo.customersAfter, deletedFlag: true,
    position: (row) => ({ id: row.id }),
    deletedRef: (row, key) => (row.deletedAt ? customerRef(key, row.id) : null),
    livingCustomer: (row) => (row.deletedAt ? null : row.id),
  },
  transactions: {
    table: 'transactions', customerColumn: 'customer_id', read: repo.transactionsAfter, position: byTimestamp,
    // A deleted customer's transactions were unlinked: customer_id is null, customer_ref holds the
    // keyed reference computed from the customer's id (the same function as for the customers export).
    deletedRef: (row, key) => {
      const customerId = row.customerId as string | null;
      if (customerId && !row.customerDeletedAt) return null;
      if (row.customerRef) return row.customerRef as string;
      return customerId ? customerRef(key, customerId) : null;
    },
  },
  activity: {
    table: 'activity', customerColumn: 'customer_id', read: repo.activityAfter, position: byTimestamp,
    deletedRef: (row, key) => (row.customerDeletedAt ? customerRef(key, row.customerId as string) : null),
    livingCustomer: (row) => (row.customerDeletedAt ? null : row.customerId as string),
  },
};

function defOf(dataset: Dataset): DatasetDef {
  const def = DEFS[dataset];
  if (!def) throw notFound(`Dataset "${dataset}" (one of ${DATASETS.join(', ')})`);
  return def;
}

/** Internal columns no export carries: stored file keys, secrets, and the database's own pseudonym column. */
function exported(column: Column): boolean {
  return column.category !== 'file' && column.category !== 'secret' && column.action !== 'hash';
}

/** The columns of a dataset and their treatment, derived from THE DATA MAP. */
export function exportColumns(dataset: Dataset): ExportColumn[] {
  const def = defOf(dataset);
  const map = DATA_MAP[def.table];
  if (!map) throw new Error(`data map has no table ${def.table}`);
  const columns: ExportColumn[] = [];
  for (const [sqlName, column] of Object.entries(map.columns)) {
    if (!exported(column)) continue;
    const treatment: Treatment = sqlName === def.customerColumn ? 'customer'
      : column.personal ? (column.identifying ? 'pseudonym' : 'null')
      : 'value';
    columns.push({ name: toCamel(sqlName), label: `${map.entity}.${sqlName}`, treatment });
    // Deleted customers (and removed records) stay in the export (so counts are right), flagged.
    if (def.deletedFlag && sqlName === 'deleted_at') {
      columns.push({ name: 'deleted', label: `${map.entity}.deleted`, treatment: 'value', derive: (row) => row.deletedAt != null });
    }
  }
  return columns;
}

/**
 * A keyed pseudonym for one field of one deleted customer: HMAC-SHA256 with the export key over the
 * field's label and the customer's stored reference (itself an HMAC of the customer's id with the
 * pseudonym key). Stable per customer and field across exports, the same in every dataset for
 * `customer.id`, never derived from the field's value, not reversible without the server's secret.
 */
export function exportPseudonym(exportKey: Buffer, ref: string, label: string): string {
  return `psn_${hmacHex(exportKey, `${label}\n${ref}`).slice(0, 32)}`;
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
    const v = values[i];
    let json: string | undefined;
    if (v === null) json = 'null';
    else if (typeof v === 'string') json = JSON.stringify(v);
    else if (typeof v === 'boolean') json = v ? 'true' : 'false';
    // What JSON.stringify does with a Date (toJSON: its ISO text, null when invalid), without its slow path.
    else if (v instanceof Date && v.toJSON === Date.prototype.toJSON) json = Number.isNaN(v.getTime()) ? 'null' : `"${v.toISOString()}"`;
    else json = JSON.stringify(v);
    // A value JSON leaves out of an object (undefined, a function…): the row's object decides, as before.
    if (json === undefined) return JSON.stringify(Object.fromEntries(columns.map((c, j) => [c.name, values[j]]))) + '\n';
    line += prefixes[i] + json;
  }
  return line + '}\n';
}

/** Exports always put the customer's id under this label, so pseudonymous ids join across datasets. */
const CUSTOMER_ID_LABEL = 'customer.id';

/** Export counters on the process's registry (registered once even if services are built twice). */
function exportMetrics(registry: Registry) {
  const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
    (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
  return {
    exports: counter('lethe_exports_total', 'Dataset exports by dataset, format and outcome (completed, aborted by the client, failed)',
      ['dataset', 'format', 'outcome']),
    rows: counter('lethe_export_rows_total', 'Rows written by dataset exports', ['dataset']),
  };
}

export function createExportsService(ctx: Ctx) {
  const { db, secrets, log } = ctx;
  const metrics = exportMetrics(ctx.metrics.registry);

  /** One row → its values in column order, pseudonymized when it belongs to a deleted customer. */
  function project(def: DatasetDef, columns: ExportColumn[], row: repo.Row): unknown[] {
    const ref = def.deletedRef(row, secrets.pseudonymKey);
    return columns.map((c) => {
      if (c.derive) return c.derive(row);
      const value = row[c.name] ?? null;
      if (ref === null || c.treatment === 'value') return value;
      if (c.treatment === 'customer') return def.customerLives?.(row) ? value : exportPseudonym(secrets.exportKey, ref, CUSTOMER_ID_LABEL);
      if (c.treatment === 'pseudonym') return value === null ? null : exportPseudonym(secrets.exportKey, ref, c.label);
      return null;
    });
  }

  async function* generate(dataset: Dataset, format: Format): AsyncGenerator<Buffer> {
    const def = defOf(dataset);
    const columns = exportColumns(dataset);
    const prefixes = jsonlPrefixes(columns);
    const started = Date.now();
    let rows = 0;
    let outcome: 'completed' | 'aborted' | 'failed' = 'aborted';
    try {
      if (format === 'csv') yield Buffer.from(csvLine(columns.map((c) => c.name)));
      // The next batch is read while this one is decrypted, formatted and written (its query in flight
      // beside the key lookup), so the database and the formatting overlap. Memory: two batches.
      const read = (after: repo.Position | null) => {
        const p = def.read(db, after, BATCH_SIZE);
        p.catch(() => {}); // awaited below; this only keeps an abandoned prefetch (client gone) from being unhandled
        return p;
      };
      let pending = read(null);
      // One batch → its bytes. The rows live only in this call: nothing of them is held while the
      // generator waits for the consumer, so they die young (cheap to collect, never promoted).
      const nextChunk = async (): Promise<{ chunk: Buffer; rows: number; more: boolean } | null> => {
        let batch = await pending;
        if (batch.length === 0) return null;
        const more = batch.length === BATCH_SIZE;
        if (more) pending = read(def.position(batch[batch.length - 1]!));
        // Personal values at rest are encrypted: one key lookup per batch decrypts the living customers' rows.
        if (def.livingCustomer) batch = await ctx.crypto.decryptRows(db, def.table, batch, def.livingCustomer, (r) => r.id);
        let out = '';
        for (const row of batch) {
          const values = project(def, columns, row);
          out += format === 'csv' ? csvLine(values) : jsonlLine(columns, prefixes, values);
        }
        return { chunk: Buffer.from(out, 'utf8'), rows: batch.length, more };
      };
      for (;;) {
        const next = await nextChunk();
        if (!next) break;
        rows += next.rows;
        metrics.rows.inc({ dataset }, next.rows);
        // Waits here until the consumer has read what was yielded before (stream backpressure). A client
        // that disconnects destroys the stream, which returns from this yield: no further batch is read.
        yield next.chunk;
        if (!next.more) break;
      }
      outcome = 'completed';
      log.info({ dataset, format, rows, ms: Date.now() - started }, 'export finished');
    } catch (error) {
      outcome = 'failed';
      log.warn({ dataset, format, rows, err: (error as Error).message }, 'export failed part-way');
      throw error;
    } finally {
      metrics.exports.inc({ dataset, format, outcome });
      if (outcome === 'aborted') log.info({ dataset, format, rows }, 'export stopped: the client went away');
    }
  }

  return {
    /**
     * Opens an export: records who exported what in the audit log, then returns a stream that
     * reads the dataset batch by batch as the client consumes it.
     */
    async open(datasetName: string, format: Format, actorKeyId: string | null) {
      if (!DATASETS.includes(datasetName)) {
        throw notFound(`Dataset "${datasetName}" (one of ${DATASETS.join(', ')})`);
      }
      const dataset = datasetName as Dataset;
      await db.transaction().execute((trx) => appendAudit(trx, {
        type: 'export.created', actorKeyId, subjectType: 'export', subjectId: null, at: ctx.clock.now(),
        data: { dataset, format },
      }));
      const stream = Readable.from(generate(dataset, format), { objectMode: false, highWaterMark: 64 * 1024 });
      return { stream, contentType: CONTENT_TYPES[format], filename: `${dataset}.${format}` };
    },
  };
}

export type ExportsService = ReturnType<typeof createExportsService>;
