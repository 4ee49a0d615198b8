import { Type } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { IdParams, ListOf, NoContent, NullableTimestamp, PageQuerySchema, Timestamp, Uuid, errors } from '../http/schemas.ts';
import type { TypedApp } from '../plugin/registry.ts';
import type { ApiKeysService } from './api-keys.service.ts';

const tags = ['keys'];

export const ApiKeySchema = Type.Object({
  id: Uuid,
  kind: Type.Union([Type.Literal('operator'), Type.Literal('application')]),
  applicationIds: Type.Array(Uuid),
  label: Type.Union([Type.String(), Type.Null()]),
  createdAt: Timestamp,
  expiresAt: NullableTimestamp,
  lastUsedAt: Type.Union([Timestamp, Type.Null()], { description: 'Recorded at most once a minute per key' }),
  revokedAt: NullableTimestamp,
}, { additionalProperties: false });

/** The key lifecycle (operator only). Issuing a key is POST /v1/api-keys (applications routes). */
export function registerApiKeyRoutes(app: TypedApp, keys: ApiKeysService) {
  app.get('/v1/api-keys', {
    config: { access: 'operator' },
    schema: {
      operationId: 'listApiKeys', tags, summary: 'List API keys (never the keys themselves)',
      querystring: Type.Object(PageQuerySchema, { additionalProperties: false }),
      response: { 200: ListOf(ApiKeySchema), ...errors() },
    },
  }, async (request) => keys.list(request.query));

  app.get('/v1/api-keys/:id', {
    config: { access: 'operator' },
    schema: {
      operationId: 'getApiKey', tags, summary: 'Get one API key (never the key itself)', params: IdParams,
      response: { 200: ApiKeySchema, ...errors(404) },
    },
  }, async (request) => keys.get(request.params.id));

  app.patch('/v1/api-keys/:id', {
    config: { access: 'operator' },
    schema: {
      operationId: 'updateApiKey', tags,
      summary: 'Set or clear an API key\'s label (blank or null clears it); audited as api_key.labelled without the text',
      params: IdParams,
      body: Type.Object({
        label: Type.Union([Type.String({ maxLength: 200 }), Type.Null()], { description: 'A note for operators, e.g. "billing service"' }),
      }, { additionalProperties: false }),
      response: { 200: ApiKeySchema, ...errors(404) },
    },
  }, async (request) => keys.setLabel(principalOf(request), request.params.id, request.body.label));

  app.delete('/v1/api-keys/:id', {
    config: { access: 'operator' },
    schema: {
      operationId: 'revokeApiKey', tags,
      summary: 'Revoke an API key: it answers 401 on every instance at once; 409 last_operator_key for the last active operator key',
      params: IdParams, response: { 204: NoContent, ...errors(404, 409) },
    },
  }, async (request, reply) => {
    await keys.revoke(principalOf(request), request.params.id);
    return reply.code(204).send();
  });
}
