import { Type } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { IdParams, Timestamp, Uuid, errors } from '../http/schemas.ts';
import type { DeletionService } from './deletion.service.ts';
import type { TypedApp } from '../plugin/registry.ts';

const tags = ['deletion'];
const Counts = Type.Record(Type.String(), Type.Integer());

export const DeletionPreviewSchema = Type.Object({
  customerId: Uuid,
  deletable: Type.Boolean(),
  blockers: Type.Array(Type.Object({
    code: Type.String(), detail: Type.String(), count: Type.Optional(Type.Integer()),
  })),
  softDeleted: Counts,
  cancelled: Type.Object({ subscriptions: Type.Integer(), licenses: Type.Integer() }),
  preservedTransactions: Type.Integer(),
  activityEntries: Type.Integer(),
  profilePhoto: Type.Boolean(),
  applicationsToNotify: Type.Array(Uuid),
}, { additionalProperties: true });

export const DeletionReceiptSchema = Type.Object({
  customerId: Uuid,
  deletedAt: Timestamp,
  deletedByKeyId: Type.Union([Uuid, Type.Null()]),
  softDeleted: Counts,
  cancelled: Type.Object({ subscriptions: Type.Integer(), licenses: Type.Integer() }),
  preservedTransactions: Type.Integer(),
  applicationsNotified: Type.Array(Uuid),
  auditEventId: Uuid,
  auditHash: Type.String(),
  redaction: Type.Union([Type.Object({
    ran: Type.Boolean({ description: 'Whether personal data was redacted (automatic personal data deletion)' }),
    via: Type.Union([Type.Literal('deletion'), Type.Literal('backlog'), Type.Null()]),
    redactedAt: Type.Union([Timestamp, Type.Null()]),
    policyVersion: Type.Union([Type.Integer(), Type.Null()], { description: 'The redaction policy version applied' }),
    policy: Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()], {
      description: 'Snapshot of the policy applied ("entity.field" → action)',
    }),
    reason: Type.Optional(Type.String()),
  }, { additionalProperties: true }), Type.Null()]),
  backupId: Type.Union([Uuid, Type.Null()]),
  keyDestroyedAt: Type.Union([Timestamp, Type.Null()], {
    description: "When the customer's data key was destroyed (crypto-shredding); null while automatic personal data deletion has not run",
  }),
  unreadableEverywhereBy: Type.Union([Timestamp, Type.Null()], {
    description: 'When the last key-epoch key that ever wrapped the customer\'s key is (scheduled to be) destroyed: from then on no copy without the keyring can be decrypted',
  }),
  unreadableEverywhereConfirmed: Type.Boolean({ description: 'True once that epoch key\'s destruction happened (audited: key_epoch.destroyed)' }),
});

export function registerDeletionRoutes(app: TypedApp, deletion: DeletionService) {
  app.get('/v1/customers/:id/deletion-preview', {
    config: { access: 'operator' },
    schema: { operationId: 'previewCustomerDeletion', tags, summary: 'What DELETE would do now: blockers, cascade counts, notifications', params: IdParams,
      response: { 200: DeletionPreviewSchema, ...errors(404) } },
  }, async (request) => deletion.preview(request.params.id));

  app.delete('/v1/customers/:id', {
    config: { access: 'operator' },
    schema: { operationId: 'deleteCustomer',
      tags, summary: 'Delete a customer and everything attached (one atomic step)', params: IdParams,
      response: { 204: Type.Null({ description: 'Deleted' }), ...errors(404, 409, 503) },
    },
  }, async (request, reply) => {
    await deletion.delete(principalOf(request), request.params.id);
    return reply.code(204).send();
  });

  app.get('/v1/deletions/:id', {
    config: { access: 'operator' },
    schema: { operationId: 'getDeletionReceipt', tags, summary: 'The deletion receipt (ids and counts only)', params: IdParams,
      response: { 200: DeletionReceiptSchema, ...errors(404) } },
  }, async (request) => deletion.receipt(request.params.id));
}
