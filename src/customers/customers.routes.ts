import { Type } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { AppError } from '../http/errors.ts';
import { IdParams, ListOf, PageQuerySchema, errors } from '../http/schemas.ts';
import { COLLECTIONS, createSchema, recordSchema } from './collections.ts';
import { ActivitySchema, CustomerCreate, CustomerPatch, CustomerSchema } from './customer.schemas.ts';
import { type CustomersService, MAX_PHOTO_BYTES } from './customers.service.ts';
import type { TypedApp } from '../plugin/registry.ts';

const tags = ['customers'];

/** `payment_method` / `paymentMethods` → `PaymentMethod` / `PaymentMethods`: operationId parts. */
const pascal = (name: string) => name.replace(/(^|_)(\w)/g, (_m, _u, c: string) => c.toUpperCase()).replace(/^\w/, (c) => c.toUpperCase());

export function registerCustomerRoutes(app: TypedApp, customers: CustomersService) {
  app.post('/v1/customers', {
    config: { access: 'operator' },
    schema: { operationId: 'createCustomer', tags, summary: 'Create a customer', body: CustomerCreate, response: { 201: CustomerSchema, ...errors(409) } },
  }, async (request, reply) => reply.code(201).send(await customers.create(request.body)));

  app.get('/v1/customers', {
    config: { access: 'operator' },
    schema: { operationId: 'listCustomers',
      tags, summary: 'List living customers',
      querystring: Type.Object({ email: Type.Optional(Type.String({ maxLength: 320 })), ...PageQuerySchema }, { additionalProperties: false }),
      response: { 200: ListOf(CustomerSchema), ...errors() },
    },
  }, async (request) => {
    const q = request.query;
    return customers.list(q.email ? { email: q.email } : {}, q);
  });

  app.get('/v1/customers/:id', {
    config: { access: 'operator' },
    schema: { operationId: 'getCustomer', tags, summary: 'Get a customer', params: IdParams, response: { 200: CustomerSchema, ...errors(404) } },
  }, async (request) => customers.get(request.params.id));

  app.patch('/v1/customers/:id', {
    config: { access: 'operator' },
    schema: { operationId: 'updateCustomer', tags, summary: 'Update a customer', params: IdParams, body: CustomerPatch, response: { 200: CustomerSchema, ...errors(404) } },
  }, async (request) => customers.update(request.params.id, request.body));

  app.put('/v1/customers/:id/profile-photo', {
    config: { access: 'operator' },
    bodyLimit: MAX_PHOTO_BYTES,
    schema: { operationId: 'putCustomerProfilePhoto',
      tags, summary: 'Upload the profile photo (raw image body: image/jpeg, png, gif or webp)', params: IdParams,
      response: { 204: Type.Null(), ...errors(404, 413, 415) },
    },
  }, async (request, reply) => {
    if (!Buffer.isBuffer(request.body)) throw new AppError('unsupported_media_type', 'Send the image as the raw request body');
    const contentType = String(request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    await customers.putPhoto(request.params.id, request.body, contentType);
    return reply.code(204).send();
  });

  app.get('/v1/customers/:id/profile-photo', {
    config: { access: 'operator' },
    schema: { operationId: 'getCustomerProfilePhoto',
      tags, summary: 'Download the profile photo', params: IdParams,
      response: { 200: Type.Unsafe({ description: 'The image', type: 'string', format: 'binary' }), ...errors(404) },
    },
  }, async (request, reply) => {
    const photo = await customers.getPhoto(request.params.id);
    return reply.type(photo.contentType).header('cache-control', 'no-store').send(photo.data);
  });

  app.get('/v1/customers/:id/activity', {
    config: { access: 'operator' },
    schema: { operationId: 'listCustomerActivity',
      tags, summary: "The customer's activity log", params: IdParams,
      querystring: Type.Object(PageQuerySchema, { additionalProperties: false }),
      response: { 200: ListOf(ActivitySchema), ...errors(404) },
    },
  }, async (request) => customers.activity(request.params.id, request.query));

  for (const def of COLLECTIONS) {
    const schema = recordSchema(def);
    const isLicenses = def.table === 'licenses';

    app.post(`/v1/customers/:id/${def.path}`, {
      config: { access: 'operator' },
      schema: { operationId: `createCustomer${pascal(def.entity)}`,
        tags, summary: `Add to the customer's ${def.path}`, params: IdParams, body: createSchema(def),
        response: { 201: schema, ...errors(404) },
      },
    }, async (request, reply) => reply.code(201).send(
      await customers.createRecord(def, request.params.id, request.body)));

    app.get(`/v1/customers/:id/${def.path}`, {
      config: { access: isLicenses ? 'any' : 'operator' },
      schema: { operationId: `listCustomer${pascal(def.table)}`,
        tags, summary: isLicenses
          ? "The customer's licenses (application keys see only their own applications' licenses)"
          : `List the customer's ${def.path}`,
        params: IdParams, querystring: Type.Object(PageQuerySchema, { additionalProperties: false }),
        response: { 200: ListOf(schema), ...errors(404) },
      },
    }, async (request) => {
      const principal = principalOf(request);
      const appIds = principal.kind === 'application' ? principal.applicationIds : undefined;
      return customers.listRecords(def, request.params.id, request.query, appIds);
    });
  }

  const license = COLLECTIONS.find((c) => c.table === 'licenses')!;
  const subscription = COLLECTIONS.find((c) => c.table === 'subscriptions')!;
  const transaction = COLLECTIONS.find((c) => c.table === 'transactions')!;

  app.post('/v1/subscriptions/:id/cancel', {
    config: { access: 'operator' },
    schema: { operationId: 'cancelSubscription', tags, summary: 'Cancel a subscription', params: IdParams, response: { 200: recordSchema(subscription), ...errors(404) } },
  }, async (request) => customers.cancel('subscriptions', request.params.id));

  app.post('/v1/licenses/:id/cancel', {
    config: { access: 'operator' },
    schema: { operationId: 'cancelLicense', tags, summary: 'Cancel a license', params: IdParams, response: { 200: recordSchema(license), ...errors(404) } },
  }, async (request) => customers.cancel('licenses', request.params.id));

  app.patch('/v1/transactions/:id', {
    config: { access: 'operator' },
    schema: { operationId: 'updateTransaction',
      tags, summary: 'Settle a pending transaction', params: IdParams,
      body: Type.Object({ status: Type.Union([Type.Literal('pending'), Type.Literal('succeeded'), Type.Literal('failed')]) },
        { additionalProperties: false }),
      response: { 200: recordSchema(transaction), ...errors(404, 409) },
    },
  }, async (request) => customers.updateTransactionStatus(
    request.params.id, request.body.status));
}
