import { COLLECTIONS } from '../customers/collections.ts';
import { DATA_MAP, toCamel, type Column } from '../erasure/data-map.ts';
import { customerRef } from '../erasure/pseudonym.ts';
import { notFound } from '../http/errors.ts';
import { hmacHex } from '../secrets.ts';

/** Every collection with a soft delete (all but transactions, which have their own dataset) is a dataset too. */
const COLLECTION_DATASETS = COLLECTIONS.filter((c) => c.softDelete);
export const DATASETS: readonly string[] = ['customers', 'transactions', 'activity', ...COLLECTION_DATASETS.map((c) => c.path)];
export type Dataset = string;

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
  /** A field computed by the SELECT rather than read from a column: the `deleted` flag (deleted_at is not null). */
  derive?: 'deleted';
}

/** What the dataset rules read of a row besides its exported columns (the SELECT's trailing fields). */
export interface RowMeta {
  id: string;
  /** The row's customer id as stored (customers: its own id). */
  customerId: string | null;
  /** Whether the row's customer is deleted (customers: the row itself). */
  customerDeleted: boolean;
  /** Whether the row itself carries a deleted_at (a record removed one by one). */
  deleted: boolean;
  /** transactions.customer_ref (the reference stored when the customer was unlinked), else null. */
  customerRef: string | null;
}

export interface DatasetDef {
  table: string;
  /** SQL column holding the customer's id. */
  customerColumn: string;
  /** Read in (created_at, id) order (the tables with a time index), else by id. */
  byTime: boolean;
  /** The customer's stored pseudonymous reference when the row belongs to a deleted customer, else null. */
  deletedRef(row: RowMeta, pseudonymKey: Buffer): string | null;
  /**
   * A record removed one by one while its customer lives: its personal fields are treated as a
   * deleted customer's (deletedRef gives the reference), its customer id stays as stored.
   */
  customerLives?(row: RowMeta): boolean;
  /** Adds the `deleted` flag after this column (customers: deleted_at; collections: deleted_at). */
  deletedFlag?: boolean;
  /** Whose key decrypts the row's personal values: a living customer's (a deleted one's are pseudonymized, never read). */
  livingCustomer?(row: RowMeta): string | null;
}

/** A collection's dataset, generated from its declaration (collections.ts) and the data map. */
function collectionDataset(sqlTable: string): DatasetDef {
  return {
    table: sqlTable, customerColumn: 'customer_id', byTime: false,
    deletedRef: (row, key) => (row.customerDeleted || row.deleted ? customerRef(key, row.customerId!) : null),
    customerLives: (row) => !row.customerDeleted,
    deletedFlag: true,
    livingCustomer: (row) => (row.customerDeleted ? null : row.customerId),
  };
}

const DEFS: Record<Dataset, DatasetDef> = {
  ...Object.fromEntries(COLLECTION_DATASETS.map((c) => [c.path, collectionDataset(c.sqlTable)])),
  customers: {
    table: 'customers', customerColumn: 'id', byTime: false, deletedFlag: true,
    deletedRef: (row, key) => (row.customerDeleted ? customerRef(key, row.id) : null),
    livingCustomer: (row) => (row.customerDeleted ? null : row.id),
  },
  transactions: {
    table: 'transactions', customerColumn: 'customer_id', byTime: true,
    // A deleted customer's transactions were unlinked: customer_id is null, customer_ref holds the
    // keyed reference computed from the customer's id (the same function as for the customers export).
    deletedRef: (row, key) => {
      if (row.customerId && !row.customerDeleted) return null;
      if (row.customerRef) return row.customerRef;
      return row.customerId ? customerRef(key, row.customerId) : null;
    },
  },
  activity: {
    table: 'activity', customerColumn: 'customer_id', byTime: true,
    deletedRef: (row, key) => (row.customerDeleted ? customerRef(key, row.customerId!) : null),
    livingCustomer: (row) => (row.customerDeleted ? null : row.customerId),
  },
};

export function defOf(dataset: Dataset): DatasetDef {
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
      columns.push({ name: 'deleted', label: `${map.entity}.deleted`, treatment: 'value', derive: 'deleted' });
    }
  }
  return columns;
}

/** The SQL column an export column reads (the derived flag reads deleted_at). */
export const sqlColumnOf = (c: ExportColumn): string => (c.derive ? 'deleted_at' : c.label.slice(c.label.indexOf('.') + 1));

/**
 * A keyed pseudonym for one field of one deleted customer: HMAC-SHA256 with the export key over the
 * field's label and the customer's stored reference (itself an HMAC of the customer's id with the
 * pseudonym key). Stable per customer and field across exports, the same in every dataset for
 * `customer.id`, never derived from the field's value, not reversible without the server's secret.
 */
export function exportPseudonym(exportKey: Buffer, ref: string, label: string): string {
  return `psn_${hmacHex(exportKey, `${label}\n${ref}`).slice(0, 32)}`;
}

/** Exports always put the customer's id under this label, so pseudonymous ids join across datasets. */
export const CUSTOMER_ID_LABEL = 'customer.id';
