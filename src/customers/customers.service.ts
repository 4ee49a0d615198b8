import { sniffImageType } from './image-type.ts';
import type { Ctx } from '../context.ts';
import type { Db } from '../db/database.ts';
import type { Customer } from '../db/schema.ts';
import { AppError, notFound } from '../http/errors.ts';
import type { PageQuery } from '../http/pagination.ts';
import { appendActivity, listActivity } from './activity.repo.ts';
import { type CollectionDef, collectionByTable } from './collections.ts';
import * as repo from './customers.repo.ts';
import { createPhotoStore } from './photo-store.ts';

/** What the notifications domain must hear about licenses, inside the same transaction. */
export interface LicenseObserver {
  licenseActivated(trx: Db, customerId: string, applicationId: string, at: Date): Promise<void>;
  licenseCancelled(trx: Db, customerId: string, applicationId: string, at: Date): Promise<void>;
}

export const noLicenseObserver: LicenseObserver = {
  licenseActivated: async () => undefined,
  licenseCancelled: async () => undefined,
};

export function toCustomerView(row: Customer) {
  return {
    id: row.id,
    externalId: row.externalId,
    salutation: row.salutation,
    firstName: row.firstName,
    lastName: row.lastName,
    displayName: row.displayName,
    email: row.email,
    organization: row.organization,
    tin: row.tin,
    lastLoginSuccessIp: row.lastLoginSuccessIp,
    lastLoginFailureIp: row.lastLoginFailureIp,
    sdkRegisterIp: row.sdkRegisterIp,
    metadata: row.metadata,
    legalHold: row.legalHold,
    profilePhotoUrl: row.profilePhotoKey ? `/v1/customers/${row.id}/profile-photo` : null,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}
export type CustomerView = ReturnType<typeof toCustomerView>;

// What an activity entry says about the person: enough for an operator to read the log, and
// exactly what redaction must later remove.
const identifying = (c: Customer) => ({ email: c.email, displayName: c.displayName });

const PHOTO_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);
export const MAX_PHOTO_BYTES = 1024 * 1024;

/** externalId is unique among living customers: a clash is 409, never a 500. */
async function uniqueExternalId<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const e = error as { code?: string; constraint?: string; message?: string };
    // The unique index is on the blind index (the stored value is ciphertext): migration 0013.
    if (e.code === '23505' && String(e.constraint ?? e.message).includes('customers_external_id_bidx_live_idx')) {
      throw new AppError('conflict', 'externalId is already held by another living customer');
    }
    throw error;
  }
}

export function createCustomersService(ctx: Ctx, licenses: LicenseObserver = noLicenseObserver) {
  const { db, clock } = ctx;
  const fc = ctx.crypto;
  const photos = createPhotoStore(ctx.blobs, fc);

  /** The living customer, decrypted (`raw`: as stored, for callers that only check it lives). */
  async function requireLive(trx: Db, id: string, lock?: 'share' | 'update', raw = false) {
    const c = await repo.findLiveCustomer(trx, id, lock, raw ? undefined : fc);
    if (!c) throw notFound('Customer');
    return c;
  }

  return {
    requireLive,

    async create(fields: repo.CustomerFields): Promise<CustomerView> {
      return uniqueExternalId(() => db.transaction().execute(async (trx) => {
        const at = clock.now();
        const c = await repo.insertCustomer(trx, fc, fields, at);
        await appendActivity(trx, fc, { customerId: c.id, type: 'customer.created', details: identifying(c), at });
        return toCustomerView(c);
      }));
    },

    async get(id: string): Promise<CustomerView> {
      return toCustomerView(await requireLive(db, id));
    },

    async list(filter: { email?: string; externalId?: string }, page: PageQuery) {
      const result = await repo.listCustomers(db, fc, filter, page);
      return { data: result.data.map(toCustomerView), nextCursor: result.nextCursor };
    },

    async update(id: string, fields: repo.CustomerFields): Promise<CustomerView> {
      return uniqueExternalId(() => db.transaction().execute(async (trx) => {
        await requireLive(trx, id, 'update', true);
        const at = clock.now();
        const c = await repo.updateCustomer(trx, fc, id, fields, at);
        await appendActivity(trx, fc, {
          customerId: id, type: 'customer.updated', at,
          details: { ...identifying(c), fields: Object.keys(fields).sort() },
        });
        return toCustomerView(c);
      }));
    },

    async putPhoto(id: string, data: Buffer, contentType: string): Promise<void> {
      if (!PHOTO_TYPES.has(contentType)) {
        throw new AppError('unsupported_media_type', `Profile photo must be one of ${[...PHOTO_TYPES].join(', ')}`);
      }
      if (data.length === 0) throw new AppError('validation_failed', 'Profile photo body is empty');
      const actual = sniffImageType(data);
      if (actual !== contentType) {
        throw new AppError('unsupported_media_type', `The body is ${actual ?? 'not an image of a supported type'}, not the declared ${contentType}`);
      }
      // Bytes (encrypted by the photo store) and reference in one transaction (stored_files): the old
      // photo's bytes go with it, no file step outside.
      await db.transaction().execute(async (trx) => {
        const c = await requireLive(trx, id, 'update', true);
        const at = clock.now();
        const key = await photos.put(trx, id, data, at);
        await repo.updateCustomer(trx, fc, id, { profilePhotoKey: key, profilePhotoContentType: contentType }, at);
        if (c.profilePhotoKey) await ctx.blobs.delete(c.profilePhotoKey, trx);
        await appendActivity(trx, fc, { customerId: id, type: 'customer.profile_photo_updated', at });
      });
    },

    async getPhoto(id: string): Promise<{ data: Buffer; contentType: string }> {
      const c = await requireLive(db, id, undefined, true);
      const data = c.profilePhotoKey ? await photos.get(db, id, c.profilePhotoKey) : null;
      if (!data || !c.profilePhotoContentType) throw notFound('Profile photo');
      return { data, contentType: c.profilePhotoContentType };
    },

    activity: async (id: string, page: PageQuery) => {
      await requireLive(db, id, undefined, true);
      return listActivity(db, fc, id, page);
    },

    async createRecord(def: CollectionDef, customerId: string, body: Record<string, unknown>) {
      return db.transaction().execute(async (trx) => {
        await requireLive(trx, customerId, 'share', true);
        const at = clock.now();
        const values: Record<string, unknown> = { ...def.defaults, ...body };
        if (def.table === 'licenses') {
          if (!await repo.applicationExists(trx, String(values.applicationId))) throw new AppError('validation_failed', 'body.applicationId does not name an application');
          if (values.status === 'cancelled') values.cancelledAt = at;
        }
        if (def.table === 'subscriptions' && values.status === 'cancelled') values.cancelledAt = at;
        if (def.table === 'transactions' && values.invoiceId) {
          if (!await repo.liveInvoiceOf(trx, customerId, String(values.invoiceId))) throw new AppError('validation_failed', 'body.invoiceId does not name an invoice of this customer');
        }
        const record = await repo.insertRecord(trx, fc, def, customerId, values, at);
        await appendActivity(trx, fc, { customerId, type: `${def.entity}.created`, recordId: String(record.id), at });
        if (def.table === 'licenses' && record.status === 'active') {
          await licenses.licenseActivated(trx, customerId, String(record.applicationId), at);
        }
        return record;
      });
    },

    async listRecords(def: CollectionDef, customerId: string, page: PageQuery, applicationIds?: string[]) {
      await requireLive(db, customerId, undefined, true);
      if (applicationIds) {
        // An application sees a customer only through its own licenses: otherwise the customer does not exist for it.
        const own = applicationIds.length > 0 && await repo.holdsLicenseOf(db, customerId, applicationIds);
        if (!own) throw notFound('Customer');
      }
      return repo.listRecords(db, fc, def, customerId, page, applicationIds ? { applicationIds } : undefined);
    },

    /** One record of the customer's collection (404 when removed or another customer's). */
    async getRecord(def: CollectionDef, customerId: string, id: string) {
      await requireLive(db, customerId, undefined, true);
      const record = await repo.findCustomerRecord(db, fc, def, customerId, id);
      if (!record) throw notFound(def.entity);
      return record;
    },

    /** Changes descriptive fields of one record; ids, applicationId, amounts, currency and status never change. */
    async updateRecord(def: CollectionDef, customerId: string, id: string, body: Record<string, unknown>) {
      if (def.table === 'licenses') {
        throw new AppError('method_not_allowed', 'Licenses have no descriptive fields: cancel one with POST /v1/licenses/{id}/cancel',
          undefined, { allow: 'GET' });
      }
      const values = Object.fromEntries(Object.entries(body).filter(([k]) => !repo.IMMUTABLE_FIELDS.has(k)));
      return db.transaction().execute(async (trx) => {
        await requireLive(trx, customerId, 'share', true);
        const record = await repo.findCustomerRecord(trx, fc, def, customerId, id, true);
        if (!record) throw notFound(def.entity);
        if (Object.keys(values).length === 0) return record;
        const at = clock.now();
        const updated = await repo.updateRecord(trx, fc, def, id, values, at);
        await appendActivity(trx, fc, { customerId, type: `${def.entity}.updated`, recordId: id, at, details: { fields: Object.keys(values).sort() } });
        return updated;
      });
    },

    /** Cancels an active subscription or license; cancelling a cancelled one returns it unchanged. */
    async cancel(table: 'subscriptions' | 'licenses', id: string) {
      const def = collectionByTable.get(table)!;
      return db.transaction().execute(async (trx) => {
        const found = await repo.findRecord(trx, fc, def, id);
        if (!found) throw notFound(def.entity === 'license' ? 'License' : 'Subscription');
        await requireLive(trx, String(found.customerId), 'share', true);
        const record = await repo.findRecord(trx, fc, def, id, true);
        if (!record) throw notFound(def.entity);
        if (record.status === 'cancelled') return record;
        const at = clock.now();
        const updated = await repo.updateRecord(trx, fc, def, id, { status: 'cancelled', cancelledAt: at }, at);
        const customerId = String(record.customerId);
        await appendActivity(trx, fc, { customerId, type: `${def.entity}.cancelled`, recordId: id, at });
        if (table === 'licenses') await licenses.licenseCancelled(trx, customerId, String(record.applicationId), at);
        return updated;
      });
    },

    async updateTransactionStatus(id: string, status: 'pending' | 'succeeded' | 'failed') {
      const def = collectionByTable.get('transactions')!;
      return db.transaction().execute(async (trx) => {
        const found = await repo.findRecord(trx, fc, def, id);
        if (!found || found.customerId === null) throw notFound('Transaction');
        await requireLive(trx, String(found.customerId), 'share', true);
        const record = await repo.findRecord(trx, fc, def, id, true);
        if (!record) throw notFound('Transaction');
        if (record.status === status) return record;
        if (record.status !== 'pending') {
          throw new AppError('conflict', `A ${String(record.status)} transaction is final; only pending transactions change status`);
        }
        const at = clock.now();
        const updated = await repo.updateRecord(trx, fc, def, id, { status }, at);
        await appendActivity(trx, fc, {
          customerId: String(record.customerId), type: `transaction.${status}`, recordId: id, at,
          details: { from: record.status, to: status },
        });
        return updated;
      });
    },
  };
}

export type CustomersService = ReturnType<typeof createCustomersService>;
