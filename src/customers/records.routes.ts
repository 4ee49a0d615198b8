import { Type, type TSchema } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { NoContent, Uuid, errors } from '../http/schemas.ts';
import type { TypedApp } from '../plugin/registry.ts';
import { ERASABLE, type RecordErasure } from '../erasure/record-erasure.ts';
import { COLLECTIONS, type CollectionDef, recordSchema } from './collections.ts';
import type { CustomersService } from './customers.service.ts';
import { IMMUTABLE_FIELDS } from './customers.repo.ts';

const tags = ['customers'];
const ItemParams = Type.Object({ id: Uuid, itemId: Uuid }, { additionalProperties: false });

/** "payment_method" → "PaymentMethod": operationIds are per collection (getCustomerPaymentMethod…). */
const pascal = (entity: string) => entity.split('_').map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');

/** PATCH body: the collection's descriptive fields only, all optional. */
export function patchSchema(def: CollectionDef) {
  const props: Record<string, TSchema> = {};
  for (const [name, schema] of Object.entries(def.writable)) if (!IMMUTABLE_FIELDS.has(name)) props[name] = Type.Optional(schema);
  return Type.Object(props, { additionalProperties: false });
}

/**
 * One record of a customer's collection: GET, PATCH (descriptive fields) and DELETE (erasable
 * collections; the erasure itself is the erasure domain's, reached through its port).
 */
export function registerRecordRoutes(app: TypedApp, customers: CustomersService, erasure: () => RecordErasure) {
  for (const def of COLLECTIONS) {
    const name = pascal(def.entity);
    const url = `/v1/customers/:id/${def.path}/:itemId`;
    const schema = recordSchema(def);
    app.get(url, {
      config: { access: 'operator' },
      schema: {
        operationId: `getCustomer${name}`, tags, summary: `Get one of the customer's ${def.path}`, params: ItemParams,
        response: { 200: schema, ...errors(404) },
      },
    }, async (request) => customers.getRecord(def, request.params.id, request.params.itemId));

    if (def.table === 'licenses') {
      // No descriptive fields (no body schema): every PATCH is 405.
      app.patch(url, {
        config: { access: 'operator' },
        schema: {
          operationId: `updateCustomer${name}`, tags,
          summary: 'Not allowed (405): a license has no descriptive fields; cancel it instead',
          params: ItemParams, response: { 200: schema, ...errors(404, 405) },
        },
      }, async (request) => customers.updateRecord(def, request.params.id, request.params.itemId, {}));
    } else {
      app.patch(url, {
        config: { access: 'operator' },
        schema: {
          operationId: `updateCustomer${name}`, tags,
          summary: `Change descriptive fields of one of the customer's ${def.path} (never ids, applicationId, amounts, currency or status)`,
          params: ItemParams, body: patchSchema(def), response: { 200: schema, ...errors(404, 405) },
        },
      }, async (request) => customers.updateRecord(def, request.params.id, request.params.itemId, request.body));
    }

    app.delete(url, {
      config: { access: 'operator' },
      schema: {
        operationId: `deleteCustomer${name}`, tags,
        summary: ERASABLE.has(def.path)
          ? `Remove one of the customer's ${def.path}: soft deleted and redacted per the redaction policy, journaled`
          : `Not allowed (405): ${def.path} are kept until the customer is deleted`,
        params: ItemParams,
        response: { 204: NoContent, ...errors(404, 405) },
      },
    }, async (request, reply) => {
      await erasure().erase(principalOf(request).keyId, def, request.params.id, request.params.itemId);
      return reply.code(204).send();
    });
  }
}
