import { Type } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { IdParams, ListOf, NullableTimestamp, PageQuerySchema, Timestamp, Uuid, errors } from '../http/schemas.ts';
import type { ApplicationsService } from './applications.service.ts';
import type { TypedApp } from '../plugin/registry.ts';

const tags = ['applications'];

export const ApplicationSchema = Type.Object({
  id: Uuid,
  name: Type.String(),
  webhookUrl: Type.Union([Type.String(), Type.Null()]),
  enabled: Type.Boolean(),
  disabledReason: Type.Union([Type.String(), Type.Null()]),
  failingSince: NullableTimestamp,
  previousSecretExpiresAt: Type.Union([Timestamp, Type.Null()], { description: 'Until then the previous secret also signs each webhook' }),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

const WebhookUrl = Type.String({ minLength: 1, maxLength: 2000, description: 'http(s) URL receiving data_deletion.required events' });

export function registerApplicationRoutes(app: TypedApp, applications: ApplicationsService) {
  app.post('/v1/applications', {
    config: { access: 'operator' },
    schema: { operationId: 'createApplication',
      tags, summary: 'Register a partner application (the webhook secret is shown only here)',
      body: Type.Object({
        name: Type.String({ minLength: 1, maxLength: 200 }),
        webhookUrl: Type.Optional(Type.Union([WebhookUrl, Type.Null()])),
      }, { additionalProperties: false }),
      response: { 201: Type.Object({ ...ApplicationSchema.properties, webhookSecret: Type.String({ pattern: '^whsec_' }) }), ...errors() },
    },
  }, async (request, reply) => reply.code(201).send(
    await applications.create(principalOf(request), request.body)));

  app.get('/v1/applications', {
    config: { access: 'operator' },
    schema: { operationId: 'listApplications',
      tags, summary: 'List applications', querystring: Type.Object(PageQuerySchema, { additionalProperties: false }),
      response: { 200: ListOf(ApplicationSchema), ...errors() },
    },
  }, async (request) => applications.list(request.query));

  app.get('/v1/applications/:id', {
    config: { access: 'any' },
    schema: { operationId: 'getApplication', tags, summary: 'Get an application (an application key: only its own)', params: IdParams, response: { 200: ApplicationSchema, ...errors(404) } },
  }, async (request) => applications.get(request.params.id, principalOf(request)));

  app.patch('/v1/applications/:id', {
    config: { access: 'any' },
    schema: { operationId: 'updateApplication',
      tags, summary: 'Change an application: name, webhook URL (SSRF-checked), enable/disable delivery (an application key: only its own webhookUrl)',
      description: 'Re-enabling (enabled: true) clears disabledReason and failingSince and sends every webhook that waited. '
        + 'Disabling keeps pending webhooks; nothing is lost.',
      params: IdParams,
      body: Type.Object({
        name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
        webhookUrl: Type.Optional(Type.Union([WebhookUrl, Type.Null()])),
        enabled: Type.Optional(Type.Boolean()),
      }, { additionalProperties: false, minProperties: 1 }),
      response: { 200: ApplicationSchema, ...errors(404) },
    },
  }, async (request) => applications.update(principalOf(request), request.params.id, request.body));

  app.post('/v1/applications/:id/rotate-secret', {
    config: { access: 'any' },
    schema: { operationId: 'rotateApplicationSecret',
      tags, summary: 'Rotate the webhook secret (the new one is shown only here; the old one also signs for 24 h)',
      params: IdParams,
      response: { 200: Type.Object({ ...ApplicationSchema.properties, webhookSecret: Type.String({ pattern: '^whsec_' }) }), ...errors(404) },
    },
  }, async (request) => applications.rotateSecret(principalOf(request), request.params.id));

  app.get('/v1/applications/:id/deliveries', {
    config: { access: 'any' },
    schema: { operationId: 'listApplicationDeliveries',
      tags, summary: 'Webhook delivery attempts of an application, newest first',
      params: IdParams,
      querystring: Type.Object({
        ...PageQuerySchema,
        webhookId: Type.Optional(Type.String({ maxLength: 100, description: 'Only attempts of this webhook-id' })),
        outcome: Type.Optional(Type.Union(['delivered', 'failed', 'timeout', 'network_error', 'refused', 'gone'].map((o) => Type.Literal(o)))),
      }, { additionalProperties: false }),
      response: {
        200: ListOf(Type.Object({
          id: Uuid,
          webhookId: Type.String({ description: 'The webhook-id header: the same on every attempt of one webhook' }),
          caseId: Type.Union([Uuid, Type.Null()], { description: 'The deletion case the webhook was about' }),
          eventType: Type.String(),
          attempt: Type.Integer({ minimum: 1 }),
          attemptedAt: Timestamp,
          durationMs: Type.Integer(),
          statusCode: Type.Union([Type.Integer(), Type.Null()]),
          outcome: Type.String({ description: 'delivered | failed | timeout | network_error | refused | gone' }),
          error: Type.Union([Type.String(), Type.Null()]),
        })),
        ...errors(404),
      },
    },
  }, async (request) => applications.deliveries(request.params.id, request.query, principalOf(request)));

  app.post('/v1/api-keys', {
    config: { access: 'operator' },
    schema: { operationId: 'createApiKey',
      tags: ['keys'], summary: 'Issue an API key (the key is shown only here)',
      body: Type.Object({
        kind: Type.Union([Type.Literal('operator'), Type.Literal('application')]),
        applicationIds: Type.Optional(Type.Array(Uuid, { maxItems: 100 })),
      }, { additionalProperties: false }),
      response: {
        201: Type.Object({
          id: Uuid, kind: Type.String(), applicationIds: Type.Array(Uuid), key: Type.String(), createdAt: Timestamp,
        }),
        ...errors(),
      },
    },
  }, async (request, reply) => reply.code(201).send(
    await applications.createKey(principalOf(request), request.body)));
}
