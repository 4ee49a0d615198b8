import { Type } from 'typebox';
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../http/auth.ts';
import { ListOf, NullableTimestamp, PageQuerySchema, Timestamp, Uuid, errors } from '../http/schemas.ts';
import type { CaseFilter, CasesService } from './cases.service.ts';

const tags = ['data-deletions'];
const Status = Type.Union([Type.Literal('grace'), Type.Literal('required'), Type.Literal('confirmed'), Type.Literal('revoked')]);
const Reason = Type.Union([Type.Literal('grace_expired'), Type.Literal('customer_deleted'), Type.Null()]);

const CaseSchema = Type.Object({
  id: Uuid,
  subscriptionId: Type.String({ description: "The customer's id (the partner contract calls it a subscription)" }),
  applicationId: Uuid,
  status: Status,
  reason: Reason,
  graceEndsAt: NullableTimestamp,
  requiredSince: NullableTimestamp,
  confirmedAt: NullableTimestamp,
  confirmedByKeyId: Type.Union([Type.String(), Type.Null()]),
  lastNotifiedDay: Type.Union([Type.String({ description: 'Local calendar day (notificationTimeZone) of the last notification' }), Type.Null()]),
  overdue: Type.Boolean({ description: 'Required and unconfirmed for more than settings.overdueAfterDays days' }),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

const ConfirmationSchema = Type.Object({
  id: Uuid,
  caseId: Uuid,
  subscriptionId: Type.String(),
  applicationId: Uuid,
  reason: Reason,
  requiredSince: NullableTimestamp,
  confirmedAt: Timestamp,
  keyId: Type.String({ description: 'The API key that made the confirmation' }),
});

export function registerDataDeletionRoutes(app: FastifyInstance, cases: CasesService) {
  app.get('/v1/data-deletions', {
    config: { access: 'any' },
    schema: { operationId: 'listDataDeletions',
      tags, summary: "Deletion cases: an application key sees only its own applications' cases, an operator key all",
      querystring: Type.Object({
        status: Type.Optional(Status),
        applicationId: Type.Optional(Uuid),
        subscriptionId: Type.Optional(Uuid),
        overdue: Type.Optional(Type.Boolean()),
        ...PageQuerySchema,
      }, { additionalProperties: false }),
      response: { 200: ListOf(CaseSchema), ...errors() },
    },
  }, async (request) => {
    const q = request.query as CaseFilter & { limit?: number; cursor?: string };
    const { limit, cursor, ...filter } = q;
    return cases.list(principalOf(request), filter, { ...(limit ? { limit } : {}), ...(cursor ? { cursor } : {}) });
  });

  app.post('/v1/data-deletions/confirmations', {
    config: { access: 'application' },
    schema: { operationId: 'confirmDataDeletion',
      tags, summary: 'Confirm that the application deleted its copy of a customer\'s data',
      body: Type.Object({ subscriptionId: Uuid, applicationId: Type.Optional(Uuid) }, { additionalProperties: false }),
      response: { 200: ConfirmationSchema, ...errors(404, 409) },
    },
  }, async (request) => cases.confirm(principalOf(request), request.body as { subscriptionId: string; applicationId?: string }));
}
