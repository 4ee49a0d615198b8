import { Type } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { ListOf, NullableTimestamp, PageQuerySchema, Timestamp, Uuid, errors } from '../http/schemas.ts';
import type { CasesService } from './cases.service.ts';
import type { TypedApp } from '../plugin/registry.ts';

const tags = ['data-deletions'];
const Status = Type.Union([Type.Literal('grace'), Type.Literal('required'), Type.Literal('confirmed'), Type.Literal('revoked')]);
const Reason = Type.Union([Type.Literal('grace_expired'), Type.Literal('customer_deleted'), Type.Null()]);

const Outcome = Type.Union([Type.Literal('deleted'), Type.Literal('no_data_held')], {
  description: 'deleted: the application deleted its copy; no_data_held: it held nothing about the customer',
});

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
  outcome: Type.Union([Outcome, Type.Null()], { description: 'Outcome of the confirmation that closed the case; null unless confirmed' }),
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
  outcome: Outcome,
});

export function registerDataDeletionRoutes(app: TypedApp, cases: CasesService) {
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
    const q = request.query;
    const { limit, cursor, ...filter } = q;
    return cases.list(principalOf(request), filter, { ...(limit ? { limit } : {}), ...(cursor ? { cursor } : {}) });
  });

  app.post('/v1/data-deletions/confirmations', {
    config: { access: 'application' },
    schema: { operationId: 'confirmDataDeletion',
      tags, summary: 'Confirm that the application deleted its copy of a customer\'s data',
      description: 'A repeat confirmation (since the case last became required) returns the first one, outcome included.',
      body: Type.Object({
        subscriptionId: Uuid,
        applicationId: Type.Optional(Uuid),
        outcome: Type.Optional(Outcome),
      }, { additionalProperties: false }),
      response: { 200: ConfirmationSchema, ...errors(404, 409) },
    },
  }, async (request) => cases.confirm(principalOf(request), request.body));

  app.get('/v1/data-deletions/confirmations', {
    config: { access: 'any' },
    schema: {
      operationId: 'listDataDeletionConfirmations', tags,
      summary: 'Confirmation history, oldest first (append-only; kept when a case is reopened)',
      description: "An application key sees only its own applications' confirmations; an operator key all of them.",
      querystring: Type.Object({
        applicationId: Type.Optional(Uuid),
        subscriptionId: Type.Optional(Uuid),
        ...PageQuerySchema,
      }, { additionalProperties: false }),
      response: { 200: ListOf(ConfirmationSchema), ...errors() },
    },
  }, async (request) => {
    const { limit, cursor, ...filter } = request.query;
    return cases.listConfirmations(principalOf(request), filter, { ...(limit ? { limit } : {}), ...(cursor ? { cursor } : {}) });
  });
}
