import { Type } from 'typebox';
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../http/auth.ts';
import { IdParams, ListOf, NullableTimestamp, PageQuerySchema, Timestamp, Uuid, errors } from '../http/schemas.ts';
import type { ApplicationsService } from './applications.service.ts';

const tags = ['applications'];

export const ApplicationSchema = Type.Object({
  id: Uuid,
  name: Type.String(),
  webhookUrl: Type.Union([Type.String(), Type.Null()]),
  enabled: Type.Boolean(),
  disabledReason: Type.Union([Type.String(), Type.Null()]),
  failingSince: NullableTimestamp,
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

const WebhookUrl = Type.String({ minLength: 1, maxLength: 2000, description: 'http(s) URL receiving data_deletion.required events' });

export function registerApplicationRoutes(app: FastifyInstance, applications: ApplicationsService) {
  app.post('/v1/applications', {
    schema: {
      tags, summary: 'Register a partner application (the webhook secret is shown only here)',
      body: Type.Object({
        name: Type.String({ minLength: 1, maxLength: 200 }),
        webhookUrl: Type.Optional(Type.Union([WebhookUrl, Type.Null()])),
      }, { additionalProperties: false }),
      response: { 201: Type.Object({ ...ApplicationSchema.properties, webhookSecret: Type.String({ pattern: '^whsec_' }) }), ...errors() },
    },
  }, async (request, reply) => reply.code(201).send(
    await applications.create(principalOf(request), request.body as { name: string; webhookUrl?: string | null })));

  app.get('/v1/applications', {
    schema: {
      tags, summary: 'List applications', querystring: Type.Object(PageQuerySchema, { additionalProperties: false }),
      response: { 200: ListOf(ApplicationSchema), ...errors() },
    },
  }, async (request) => applications.list(request.query as { limit?: number; cursor?: string }));

  app.get('/v1/applications/:id', {
    schema: { tags, summary: 'Get an application', params: IdParams, response: { 200: ApplicationSchema, ...errors(404) } },
  }, async (request) => applications.get((request.params as { id: string }).id));

  app.post('/v1/api-keys', {
    schema: {
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
    await applications.createKey(principalOf(request), request.body as { kind: 'operator' | 'application'; applicationIds?: string[] })));
}
