import { Type, type TSchema } from 'typebox';
import { NullableString, NullableTimestamp, Timestamp, Uuid } from '../http/schemas.ts';

/**
 * The customer's related collections, declared once: their URL segment, table, activity name and
 * fields. Routes, schemas, the repository and the deletion cascade are all driven from here.
 */
export interface CollectionDef {
  /** URL segment under /v1/customers/{id}/ */
  path: string;
  table: 'addresses' | 'paymentMethods' | 'subscriptions' | 'memberships' | 'socialIdentities'
    | 'invoices' | 'orders' | 'transactions' | 'licenses';
  /** SQL table name (snake_case). */
  sqlTable: string;
  /** Singular name used in activity types, e.g. "address.created". */
  entity: string;
  /** Fields a client may set on create; the value is its schema. */
  writable: Record<string, TSchema>;
  required: string[];
  /** Defaults applied on create for fields the client left out. */
  defaults: Record<string, unknown>;
  /** Read-only fields shown in responses beyond id/customerId/timestamps. */
  readOnly: Record<string, TSchema>;
  /** Soft deleted with the customer (transactions are not: they are preserved and unlinked). */
  softDelete: boolean;
  /** Live rows with status 'active' become 'cancelled' (cancelled_at set) when the customer is deleted. */
  cancelOnDelete?: boolean;
}

const str = (max = 200) => NullableString({ maxLength: max });
const currency = Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217 code, upper case' });
const amount = Type.Integer({ minimum: -9007199254740991, maximum: 9007199254740991, description: 'Amount in minor units' });

export const COLLECTIONS: CollectionDef[] = [
  {
    path: 'addresses', table: 'addresses', sqlTable: 'addresses', entity: 'address', softDelete: true,
    writable: {
      salutation: str(50), firstName: str(), lastName: str(), title: str(100), company: str(), department: str(),
      line1: str(), line2: str(), city: str(), postalCode: str(30), country: str(100), phone: str(50),
    },
    required: [], defaults: {}, readOnly: {},
  },
  {
    path: 'payment-methods', table: 'paymentMethods', sqlTable: 'payment_methods', entity: 'payment_method', softDelete: true,
    writable: {
      brand: str(50), cardId: str(), last4: NullableString({ pattern: '^[0-9]{4}$' }),
      expMonth: Type.Union([Type.Integer({ minimum: 1, maximum: 12 }), Type.Null()]),
      expYear: Type.Union([Type.Integer({ minimum: 1900, maximum: 9999 }), Type.Null()]),
      token: str(500),
    },
    required: [], defaults: {}, readOnly: {},
  },
  {
    path: 'subscriptions', table: 'subscriptions', sqlTable: 'subscriptions', entity: 'subscription', softDelete: true, cancelOnDelete: true,
    writable: {
      plan: Type.String({ minLength: 1, maxLength: 200 }),
      status: Type.Union([Type.Literal('active'), Type.Literal('cancelled')]),
      giftRecipientEmail: NullableString({ format: 'email', maxLength: 320 }),
      giftRecipientFirstName: str(), giftRecipientLastName: str(),
    },
    required: ['plan'], defaults: { status: 'active' }, readOnly: { cancelledAt: NullableTimestamp },
  },
  {
    path: 'memberships', table: 'memberships', sqlTable: 'memberships', entity: 'membership', softDelete: true,
    writable: { name: Type.String({ minLength: 1, maxLength: 200 }), role: str(100), status: str(50) },
    required: ['name'], defaults: {}, readOnly: {},
  },
  {
    path: 'social-identities', table: 'socialIdentities', sqlTable: 'social_identities', entity: 'social_identity', softDelete: true,
    writable: { provider: Type.String({ minLength: 1, maxLength: 100 }), externalId: Type.String({ minLength: 1, maxLength: 500 }) },
    required: ['provider', 'externalId'], defaults: {}, readOnly: {},
  },
  {
    path: 'invoices', table: 'invoices', sqlTable: 'invoices', entity: 'invoice', softDelete: true,
    writable: {
      number: Type.String({ minLength: 1, maxLength: 100 }), amountMinor: amount, currency,
      status: Type.Union([Type.Literal('open'), Type.Literal('paid'), Type.Literal('void')]),
    },
    required: ['number', 'amountMinor', 'currency'], defaults: { status: 'open' }, readOnly: {},
  },
  {
    path: 'orders', table: 'orders', sqlTable: 'orders', entity: 'order', softDelete: true,
    writable: { number: Type.String({ minLength: 1, maxLength: 100 }), amountMinor: amount, currency },
    required: ['number', 'amountMinor', 'currency'], defaults: {}, readOnly: {},
  },
  {
    path: 'transactions', table: 'transactions', sqlTable: 'transactions', entity: 'transaction', softDelete: false,
    writable: {
      amountMinor: amount, currency,
      status: Type.Union([Type.Literal('pending'), Type.Literal('succeeded'), Type.Literal('failed')]),
      invoiceId: Type.Union([Uuid, Type.Null()]),
    },
    required: ['amountMinor', 'currency'], defaults: { status: 'succeeded', invoiceId: null }, readOnly: {},
  },
  {
    path: 'licenses', table: 'licenses', sqlTable: 'licenses', entity: 'license', softDelete: true, cancelOnDelete: true,
    writable: { applicationId: Uuid, status: Type.Union([Type.Literal('active'), Type.Literal('cancelled')]) },
    required: ['applicationId'], defaults: { status: 'active' }, readOnly: { cancelledAt: NullableTimestamp },
  },
];

export const collectionByPath = new Map(COLLECTIONS.map((c) => [c.path, c]));
export const collectionByTable = new Map(COLLECTIONS.map((c) => [c.table, c]));

export function createSchema(def: CollectionDef) {
  const props: Record<string, TSchema> = {};
  for (const [name, schema] of Object.entries(def.writable)) {
    props[name] = def.required.includes(name) ? schema : Type.Optional(schema);
  }
  return Type.Object(props, { additionalProperties: false });
}

export function recordSchema(def: CollectionDef) {
  return Type.Object({
    id: Uuid,
    customerId: Uuid,
    ...def.writable,
    ...def.readOnly,
    createdAt: Timestamp,
    updatedAt: Timestamp,
  }, { additionalProperties: false });
}

/** Columns returned for a record of this collection (never deletedAt or internal columns). */
export function recordColumns(def: CollectionDef): string[] {
  return ['id', 'customerId', ...Object.keys(def.writable), ...Object.keys(def.readOnly), 'createdAt', 'updatedAt'];
}
