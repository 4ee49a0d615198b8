import { type Kysely, sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { Customer } from '../db/schema.ts';
import { paginate, type PageQuery } from '../http/pagination.ts';
import type { CollectionDef } from './collections.ts';
import { recordColumns } from './collections.ts';

export type CustomerFields = Partial<Pick<Customer,
  'salutation' | 'firstName' | 'lastName' | 'displayName' | 'email' | 'organization' | 'tin'
  | 'lastLoginSuccessIp' | 'lastLoginFailureIp' | 'sdkRegisterIp' | 'legalHold'>> & { metadata?: Record<string, string> };

export async function insertCustomer(db: Db, fields: CustomerFields, at: Date): Promise<Customer> {
  return db.insertInto('customers').values({
    ...fields,
    metadata: JSON.stringify(fields.metadata ?? {}),
    createdAt: at,
    updatedAt: at,
    deletedAt: null,
    redactedAt: null,
    profilePhotoKey: null,
    profilePhotoContentType: null,
  }).returningAll().executeTakeFirstOrThrow();
}

/** A living customer, optionally row-locked: FOR SHARE for child writes, FOR UPDATE for deletion. */
export async function findLiveCustomer(db: Db, id: string, lock?: 'share' | 'update'): Promise<Customer | undefined> {
  let q = db.selectFrom('customers').selectAll().where('id', '=', id).where('deletedAt', 'is', null);
  if (lock === 'share') q = q.forShare();
  if (lock === 'update') q = q.forUpdate();
  return q.executeTakeFirst();
}

export async function updateCustomer(db: Db, id: string, fields: CustomerFields & {
  profilePhotoKey?: string | null; profilePhotoContentType?: string | null;
}, at: Date): Promise<Customer> {
  const { metadata, ...rest } = fields;
  return db.updateTable('customers')
    .set({ ...rest, ...(metadata !== undefined ? { metadata: JSON.stringify(metadata) } : {}), updatedAt: at })
    .where('id', '=', id).returningAll().executeTakeFirstOrThrow();
}

export function listCustomers(db: Db, filter: { email?: string }, page: PageQuery) {
  let q = db.selectFrom('customers').selectAll().where('deletedAt', 'is', null);
  if (filter.email) q = q.where(sql<string>`lower(email)`, '=', filter.email.toLowerCase());
  return paginate(q, 'customers', page);
}

// Collections are declared in collections.ts; these queries work for any of them by name.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export async function insertRecord(db: Db, def: CollectionDef, customerId: string, values: Record<string, unknown>, at: Date) {
  const row = { ...values, customerId, createdAt: at, updatedAt: at };
  return (db as unknown as AnyDb).insertInto(def.table).values(row)
    .returning(recordColumns(def)).executeTakeFirstOrThrow() as Promise<Record<string, unknown>>;
}

export function listRecords(db: Db, def: CollectionDef, customerId: string, page: PageQuery, filter?: { applicationIds?: string[] }) {
  let q = (db as unknown as AnyDb).selectFrom(def.table).select(recordColumns(def))
    .where('customerId', '=', customerId);
  if (def.softDelete) q = q.where('deletedAt', 'is', null);
  if (filter?.applicationIds) q = q.where('applicationId', 'in', filter.applicationIds);
  return paginate(q as never, def.sqlTable, page) as Promise<{ data: Record<string, unknown>[]; nextCursor: string | null }>;
}

export async function findRecord(db: Db, def: CollectionDef, id: string, lock = false) {
  let q = (db as unknown as AnyDb).selectFrom(def.table).select(recordColumns(def)).where('id', '=', id);
  if (def.softDelete) q = q.where('deletedAt', 'is', null);
  if (lock) q = q.forUpdate();
  return q.executeTakeFirst() as Promise<Record<string, unknown> | undefined>;
}

export async function updateRecord(db: Db, def: CollectionDef, id: string, values: Record<string, unknown>, at: Date) {
  return (db as unknown as AnyDb).updateTable(def.table).set({ ...values, updatedAt: at })
    .where('id', '=', id)
    .returning(recordColumns(def)).executeTakeFirstOrThrow() as Promise<Record<string, unknown>>;
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
