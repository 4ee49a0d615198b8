import { Type } from 'typebox';
import type { Ctx } from '../context.ts';
import { validation } from '../http/errors.ts';
import { Timestamp, Uuid, errors } from '../http/schemas.ts';
import { listAudit, listAuditTypes } from './audit.repo.ts';
import { verifyAudit } from './verify.ts';
import type { TypedApp } from '../plugin/registry.ts';

const tags = ['audit'];

const AuditEventSchema = Type.Object({
  seq: Type.Integer(), id: Uuid, type: Type.String(), actorKeyId: Type.Union([Uuid, Type.Null()]),
  subjectType: Type.Union([Type.String(), Type.Null()]), subjectId: Type.Union([Uuid, Type.Null()]),
  data: Type.Record(Type.String(), Type.Unknown()), createdAt: Timestamp, prevHash: Type.String(), hash: Type.String(),
});

export function registerAuditRoutes(app: TypedApp, ctx: Ctx) {
  app.get('/v1/audit-events', {
    config: { access: 'operator' },
    schema: { operationId: 'listAuditEvents',
      tags, summary: 'The audit log, oldest first (hash-chained; ids and counts only)',
      querystring: Type.Object({
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
        cursor: Type.Optional(Type.String({ maxLength: 40 })),
        subjectId: Type.Optional(Uuid),
        type: Type.Optional(Type.String({ maxLength: 100 })),
        order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')], { description: 'asc (default): oldest first; desc: newest first' })),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ data: Type.Array(AuditEventSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }), ...errors() },
    },
  }, async (request) => {
    const q = request.query;
    // The cursor is the last sequence number seen, encoded so clients treat it as opaque.
    let afterSeq = q.order === 'desc' ? Number.MAX_SAFE_INTEGER : 0;
    if (q.cursor) {
      const decoded = Buffer.from(q.cursor, 'base64url').toString('utf8');
      afterSeq = /^[1-9][0-9]{0,15}$/.test(decoded) ? Number(decoded) : NaN;
      if (!Number.isSafeInteger(afterSeq)) throw validation('querystring.cursor is not a cursor returned by this API');
    }
    const limit = q.limit ?? 50;
    const rows = await listAudit(ctx.db, { afterSeq, limit: limit + 1, ...(q.order === 'desc' ? { desc: true } : {}), ...(q.subjectId ? { subjectId: q.subjectId } : {}), ...(q.type ? { type: q.type } : {}) });
    const data = rows.slice(0, limit);
    const last = data[data.length - 1];
    return { data, nextCursor: rows.length > limit && last ? Buffer.from(String(last.seq)).toString('base64url') : null };
  });

  app.get('/v1/audit-events/verify', {
    config: { access: 'operator' },
    schema: { operationId: 'verifyAuditEvents',
      tags, summary: 'Verify the keyed chain, its head against the checkpoints outside the database, and every deletion receipt',
      response: { 200: Type.Object({
        valid: Type.Boolean(), count: Type.Integer(), firstInvalidSeq: Type.Union([Type.Integer(), Type.Null()]),
        head: Type.Union([Type.Object({ seq: Type.Integer(), hash: Type.String() }), Type.Null()]),
        checkpointSeq: Type.Union([Type.Integer(), Type.Null()]),
        problems: Type.Array(Type.Object({
          kind: Type.Union(['chain_broken', 'truncated', 'rewritten', 'checkpoint_invalid', 'receipt_event_missing', 'receipt_mismatch'].map((k) => Type.Literal(k))),
          seq: Type.Union([Type.Integer(), Type.Null()]), customerId: Type.Union([Uuid, Type.Null()]), detail: Type.String(),
        })),
        restores: Type.Array(Type.Object({
          backupId: Type.String(), at: Type.String(), replacedSeq: Type.Integer(), restoredSeq: Type.Integer(), eventsLost: Type.Integer(),
        })),
      }), ...errors() },
    },
  }, async () => verifyAudit(ctx));

  app.get('/v1/audit-events/types', {
    config: { access: 'operator' },
    schema: {
      tags, operationId: 'listAuditEventTypes', summary: 'Every audit event type recorded so far, with its count (for filters)',
      response: { 200: Type.Object({ types: Type.Array(Type.Object({ type: Type.String(), count: Type.Integer() })) }), ...errors() },
    },
  }, async () => ({ types: await listAuditTypes(ctx.db) }));
}
