import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import type { FieldCrypto } from '../crypto/field-crypto.ts';
import type { Db } from '../db/database.ts';
import { SqlText } from '../db/sql-text.ts';
import type { Customer } from '../db/schema.ts';
import { paginate, type PageQuery } from '../http/pagination.ts';
import type { CollectionDef } from './collections.ts';
import { recordColumns } from './collections.ts';

export type CustomerFields = Partial<Pick<Customer,
  'externalId' | 'salutation' | 'firstName' | 'lastName' | 'displayName' | 'email' | 'organization' | 'tin'
  | 'lastLoginSuccessIp' | 'lastLoginFailureIp' | 'sdkRegisterIp' | 'legalHold'>> & { metadata?: Record<string, string> };

/** The external id's blind index (its own label): what the unique-among-living index and the filter use. */
export const externalIdIndex = (fc: FieldCrypto, externalId: string | null | undefined) =>
  fc.labelledBlindIndex('customer.externalId', externalId);

// Personal values are stored encrypted under the customer's key (fc: src/crypto/field-crypto.ts);
// these functions take and return clear rows.
export async function insertCustomer(db: Db, fc: FieldCrypto, fields: CustomerFields, at: Date): Promise<Customer> {
  const id = crypto.randomUUID();
  const dek = await fc.keyFor(db, id, at);
  const row = await db.insertInto('customers').values({
    ...fc.encryptRow('customers', { ...fields, metadata: fields.metadata ?? {} }, id, dek),
    id,
    emailBidx: fc.blindIndex(fields.email),
    externalIdBidx: externalIdIndex(fc, fields.externalId),
    createdAt: at,
    updatedAt: at,
    deletedAt: null,
    redactedAt: null,
    profilePhotoKey: null,
    profilePhotoContentType: null,
  } as never).returningAll().executeTakeFirstOrThrow();
  return fc.decryptRow('customers', row, id, dek);
}

/**
 * A living customer, optionally row-locked: FOR SHARE for child writes, FOR UPDATE for deletion.
 * With `fc` its personal values are decrypted; without, they are as stored (callers that only
 * check it lives, or read ids, flags and timestamps).
 */
export async function findLiveCustomer(db: Db, id: string, lock?: 'share' | 'update', fc?: FieldCrypto): Promise<Customer | undefined> {
  // Text, not a Kysely builder: read by every GET and DELETE (src/db/sql-text.ts).
  const q = new SqlText();
  const [row] = await q.runCamel<Customer>(db, `SELECT * FROM customers WHERE id = ${q.param(id)} AND deleted_at IS NULL${
    lock === 'share' ? ' FOR SHARE' : lock === 'update' ? ' FOR UPDATE' : ''}`);
  if (!row || !fc) return row;
  // Held FOR UPDATE: no other transaction can give the customer a key now (writers hold it FOR SHARE).
  if (lock === 'update') fc.keys.holdCustomer(db, id);
  return fc.decryptRow('customers', row, id, (await fc.keysOf(db, [id])).get(id));
}

export async function updateCustomer(db: Db, fc: FieldCrypto, id: string, fields: CustomerFields & {
  profilePhotoKey?: string | null; profilePhotoContentType?: string | null;
}, at: Date): Promise<Customer> {
  const dek = await fc.keyFor(db, id, at);
  const set = fc.encryptRow('customers', fields as Record<string, unknown>, id, dek);
  if ('email' in fields) set.emailBidx = fc.blindIndex(fields.email);
  if ('externalId' in fields) set.externalIdBidx = externalIdIndex(fc, fields.externalId);
  const row = await db.updateTable('customers').set({ ...set, updatedAt: at } as never)
    .where('id', '=', id).returningAll().executeTakeFirstOrThrow();
  return fc.decryptRow('customers', row, id, dek);
}

/**
 * Lists living customers; `email` is an exact match on the normalized address, `externalId` an
 * exact match on the external id, each through its blind index (the stored values are ciphertext).
 */
export async function listCustomers(db: Db, fc: FieldCrypto, filter: { email?: string; externalId?: string }, page: PageQuery) {
  let q = db.selectFrom('customers').selectAll().where('deletedAt', 'is', null);
  if (filter.email) q = q.where('emailBidx', '=', fc.blindIndex(filter.email));
  if (filter.externalId) q = q.where('externalIdBidx', '=', externalIdIndex(fc, filter.externalId));
  const result = await paginate(q, 'customers', page);
  const data = await fc.decryptRows(db, 'customers', result.data as Customer[], (r) => r.id, (r) => r.id);
  return { data, nextCursor: result.nextCursor };
}

// Collections are declared in collections.ts; these queries work for any of them by name.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

type Rec = Record<string, unknown>;
const decryptRecords = (db: Db, fc: FieldCrypto, def: CollectionDef, rows: Rec[]) =>
  fc.decryptRows(db, def.sqlTable, rows, (r) => (r.customerId as string | null) ?? null, (r) => String(r.id));

export async function insertRecord(db: Db, fc: FieldCrypto, def: CollectionDef, customerId: string, values: Rec, at: Date) {
  const id = crypto.randomUUID();
  const dek = await fc.keyFor(db, customerId, at);
  const row = { ...fc.encryptRow(def.sqlTable, values, id, dek), id, customerId, createdAt: at, updatedAt: at };
  const stored = await (db as unknown as AnyDb).insertInto(def.table).values(row)
    .returning(recordColumns(def)).executeTakeFirstOrThrow() as Rec;
  return fc.decryptRow(def.sqlTable, stored, id, dek);
}

export async function listRecords(db: Db, fc: FieldCrypto, def: CollectionDef, customerId: string, page: PageQuery, filter?: { applicationIds?: string[] }) {
  let q = (db as unknown as AnyDb).selectFrom(def.table).select(recordColumns(def))
    .where('customerId', '=', customerId);
  if (def.softDelete) q = q.where('deletedAt', 'is', null);
  if (filter?.applicationIds) q = q.where('applicationId', 'in', filter.applicationIds);
  const result = await (paginate(q as never, def.sqlTable, page) as Promise<{ data: Rec[]; nextCursor: string | null }>);
  return { data: await decryptRecords(db, fc, def, result.data), nextCursor: result.nextCursor };
}

export async function findRecord(db: Db, fc: FieldCrypto, def: CollectionDef, id: string, lock = false) {
  let q = (db as unknown as AnyDb).selectFrom(def.table).select(recordColumns(def)).where('id', '=', id);
  if (def.softDelete) q = q.where('deletedAt', 'is', null);
  if (lock) q = q.forUpdate();
  const row = await q.executeTakeFirst() as Rec | undefined;
  return row ? (await decryptRecords(db, fc, def, [row]))[0] : undefined;
}

export async function updateRecord(db: Db, fc: FieldCrypto, def: CollectionDef, id: string, values: Rec, at: Date) {
  const any = db as unknown as AnyDb;
  const owner = await any.selectFrom(def.table).select('customerId').where('id', '=', id).executeTakeFirst() as { customerId: string | null } | undefined;
  const dek = owner?.customerId ? await fc.keyFor(db, owner.customerId, at) : undefined;
  const set = dek ? fc.encryptRow(def.sqlTable, values, id, dek) : values;
  const row = await any.updateTable(def.table).set({ ...set, updatedAt: at })
    .where('id', '=', id)
    .returning(recordColumns(def)).executeTakeFirstOrThrow() as Rec;
  return (await decryptRecords(db, fc, def, [row]))[0]!;
}

export async function applicationExists(db: Db, id: string): Promise<boolean> {
  return (await db.selectFrom('applications').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
}

/** Whether `invoiceId` is a living invoice of the customer. */
export async function liveInvoiceOf(db: Db, customerId: string, invoiceId: string): Promise<boolean> {
  const inv = await db.selectFrom('invoices').select('id').where('id', '=', invoiceId)
    .where('customerId', '=', customerId).where('deletedAt', 'is', null).executeTakeFirst();
  return inv !== undefined;
}

/** Whether the customer holds a (living) license of one of the applications: how an application sees a customer. */
export async function holdsLicenseOf(db: Db, customerId: string, applicationIds: string[]): Promise<boolean> {
  const own = await db.selectFrom('licenses').select('id')
    .where('customerId', '=', customerId).where('applicationId', 'in', applicationIds)
    .where('deletedAt', 'is', null).limit(1).executeTakeFirst();
  return own !== undefined;
}

/** Columns PATCH never changes: ids, the application, amounts, currency, status (SPEC "Operator API"). */
export const IMMUTABLE_FIELDS = new Set(['id', 'customerId', 'applicationId', 'amountMinor', 'currency', 'status', 'invoiceId']);

/** One record of a customer (not removed), optionally row-locked. */
export async function findCustomerRecord(db: Db, fc: FieldCrypto, def: CollectionDef, customerId: string, id: string, lock = false) {
  let q = (db as unknown as AnyDb).selectFrom(def.table).select(recordColumns(def)).where('id', '=', id).where('customerId', '=', customerId);
  if (def.softDelete) q = q.where('deletedAt', 'is', null);
  if (lock) q = q.forUpdate();
  const row = await q.executeTakeFirst() as Rec | undefined;
  return row ? (await decryptRecords(db, fc, def, [row]))[0] : undefined;
}
