import { Type } from 'typebox';
import type { Ctx } from '../context.ts';
import { ApplicationSchema } from '../applications/applications.routes.ts';
import { collectionByTable, recordSchema } from '../customers/collections.ts';
import { principalOf } from '../http/auth.ts';
import { notFound } from '../http/errors.ts';
import { ListOf, NullableTimestamp, PageQuerySchema, Timestamp, Uuid, errors } from '../http/schemas.ts';
import { applicationDeliveryHealth, caseDeliveryHealth } from './delivery-health.repo.ts';
import type { TypedApp } from '../plugin/registry.ts';
import type { OperatorService } from './operator.service.ts';
import { ENDPOINT_DISABLE_REASONS, LEGAL_HOLD_REASONS, LICENSE_CANCEL_REASONS, NOTE_MAX } from './reasons.ts';

const Enum = (values: readonly string[], description: string) =>
  Type.Union(values.map((v) => Type.Literal(v)), { description });
const Note = Type.Optional(Type.String({ maxLength: NOTE_MAX,
  description: "Free text for the customer's activity log (erased with the customer); never written to the audit log" }));

const Health = {
  webhookId: Type.String(), eventType: Type.String(), status: Type.String(), attempts: Type.Integer(),
  lastOutcome: Type.Union([Type.String(), Type.Null()]), lastStatusCode: Type.Union([Type.Integer(), Type.Null()]),
  lastError: Type.Union([Type.String(), Type.Null()]), lastAttemptAt: NullableTimestamp, nextRetryAt: NullableTimestamp,
  responseExcerpt: Type.Union([Type.String(), Type.Null()], { description: 'At most 160 characters of the last failed response, scrubbed of addresses, numbers and ids' }),
  failing: Type.Boolean(),
};
const CaseHealthSchema = Type.Object({ caseId: Uuid, subscriptionId: Uuid, applicationId: Uuid, caseStatus: Type.String(), ...Health });
const AppHealthSchema = Type.Object({
  applicationId: Uuid, enabled: Type.Boolean(), disabledReason: Type.Union([Type.String(), Type.Null()]),
  failingSince: NullableTimestamp, pending: Type.Integer(), failing: Type.Integer(), nextRetryAt: NullableTimestamp,
  last: Type.Union([Type.Object(Health), Type.Null()]),
});
const Queued = Type.Object({ webhookId: Type.String(), status: Type.Literal('pending'), nextAttemptAt: Timestamp });
const operator = { access: 'operator' as const };

export function registerOperatorRoutes(app: TypedApp, ctx: Ctx, ops: OperatorService) {
  const licenseSchema = recordSchema(collectionByTable.get('licenses')!);
  app.get('/v1/delivery-health', {
    config: operator,
    schema: {
      tags: ['webhooks'], operationId: 'listCaseDeliveryHealth',
      summary: "Each deletion case's latest webhook: last outcome, next retry, response excerpt; `failing=true` lists failing deliveries",
      querystring: Type.Object({
        applicationId: Type.Optional(Uuid), failing: Type.Optional(Type.Boolean()),
        caseId: Type.Optional(Type.Array(Uuid, { maxItems: 500 })), ...PageQuerySchema,
      }, { additionalProperties: false }),
      response: { 200: ListOf(CaseHealthSchema), ...errors() },
    },
  }, async (request) => {
    const { caseId, ...q } = request.query;
    return caseDeliveryHealth(ctx.db, { ...q, ...(caseId ? { caseIds: caseId } : {}) });
  });

  app.get('/v1/applications/:id/delivery-health', {
    config: operator,
    schema: {
      tags: ['webhooks'], operationId: 'getApplicationDeliveryHealth', summary: "An endpoint's health: state, last attempt, what waits, next retry",
      params: Type.Object({ id: Uuid }, { additionalProperties: false }),
      response: { 200: AppHealthSchema, ...errors(404) },
    },
  }, async (request) => {
    const h = await applicationDeliveryHealth(ctx.db, request.params.id);
    if (!h) throw notFound('Application');
    return h;
  });

  app.post('/v1/applications/:id/deliveries/:webhookId/retry', {
    config: operator,
    schema: {
      tags: ['webhooks'], operationId: 'retryWebhookDelivery',
      summary: 'Send a pending or failed webhook now, under its own webhook-id (not a new notice); audited',
      params: Type.Object({ id: Uuid, webhookId: Type.String({ maxLength: 100 }) }, { additionalProperties: false }),
      response: { 202: Queued, ...errors(404, 409) },
    },
  }, async (request, reply) => {
    const p = request.params;
    return reply.code(202).send(await ops.retryNow(principalOf(request), p.id, p.webhookId));
  });

  app.post('/v1/applications/:id/test-webhook', {
    config: operator,
    schema: {
      tags: ['webhooks'], operationId: 'sendTestWebhook',
      summary: 'Send a {"type":"webhook.test"} event to the endpoint (never counted as a notice); audited',
      params: Type.Object({ id: Uuid }, { additionalProperties: false }),
      response: { 202: Queued, ...errors(404) },
    },
  }, async (request, reply) =>
    reply.code(202).send(await ops.sendTest(principalOf(request), request.params.id)));

  app.post('/v1/applications/:id/disable', {
    config: operator,
    schema: {
      tags: ['applications'], operationId: 'disableApplicationEndpoint',
      summary: 'Stop webhook deliveries to this endpoint (they wait until re-enabled); the reason is audited',
      params: Type.Object({ id: Uuid }, { additionalProperties: false }),
      body: Type.Object({ reason: Enum(ENDPOINT_DISABLE_REASONS, 'Why (audited)') }, { additionalProperties: false }),
      response: { 200: ApplicationSchema, ...errors(404) },
    },
  }, async (request) =>
    ops.disableEndpoint(principalOf(request), request.params.id, request.body.reason));

  app.put('/v1/customers/:id/legal-hold', {
    config: operator,
    schema: {
      tags: ['customers'], operationId: 'setCustomerLegalHold',
      summary: 'Place or lift a legal hold with a reason (audited); an optional note goes to the activity log',
      params: Type.Object({ id: Uuid }, { additionalProperties: false }),
      body: Type.Object({ legalHold: Type.Boolean(), reason: Enum(LEGAL_HOLD_REASONS, 'Why (audited)'), note: Note }, { additionalProperties: false }),
      response: { 200: Type.Object({ customerId: Uuid, legalHold: Type.Boolean() }), ...errors(404) },
    },
  }, async (request) => {
    const b = request.body;
    return ops.setLegalHold(principalOf(request), request.params.id, b.legalHold, b);
  });

  app.post('/v1/licenses/:id/cancellation', {
    config: operator,
    schema: {
      tags: ['customers'], operationId: 'cancelLicenseWithReason',
      summary: 'Cancel a license with a reason (audited; starts the grace period); an optional note goes to the activity log',
      params: Type.Object({ id: Uuid }, { additionalProperties: false }),
      body: Type.Object({ reason: Enum(LICENSE_CANCEL_REASONS, 'Why (audited)'), note: Note }, { additionalProperties: false }),
      response: { 200: licenseSchema, ...errors(404) },
    },
  }, async (request) =>
    ops.cancelLicense(principalOf(request), request.params.id, request.body));
}
