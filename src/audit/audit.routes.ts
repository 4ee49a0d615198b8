import { Type } from 'typebox';
import type { Ctx } from '../context.ts';
import { validation } from '../http/errors.ts';
import { Timestamp, Uuid, errors } from '../http/schemas.ts';
import { listAudit, verifyAudit } from './audit.repo.ts';
import type { TypedApp } from '../plugin/registry.ts';

const tags = ['audit'];

const AuditEventSchema = Type.Object({
  seq: Type.Integer(), id: Uuid, type: Type.String(), actorKeyId: Type.Union([Uuid, Type.Null()]),
  subjectType: Type.Union([Type.String(), Type.Null()]), subjectId: Type.Union([Uuid, Type.Null()]),
  data: Type.Record(Type.String(), Type.Unknown()), createdAt: Timestamp, prevHash: Type.String(), hash: Type.String(),
});

export function registerAuditRoutes(app: TypedApp, ctx: Ctx) {
  app.get('/v1/audit-events', {
    schema: { operationId: 'listAuditEvents',
      tags, summary: 'The audit log, oldest first (hash-chained; ids and counts only)',
      querystring: Type.Object({
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
        cursor: Type.Optional(Type.String({ maxLength: 40 })),
        subjectId: Type.Optional(Uuid),
        type: Type.Optional(Type.String({ maxLength: 100 })),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ data: Type.Array(AuditEventSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }), ...errors() },
    },
  }, async (request) => {
    const q = request.query;
    // The cursor is the last sequence number seen, encoded so clients treat it as opaque.
    let afterSeq = 0;
    if (q.cursor) {
      const decoded = Buffer.from(q.cursor, 'base64url').toString('utf8');
      afterSeq = /^[1-9][0-9]{0,15}$/.test(decoded) ? Number(decoded) : NaN;
      if (!Number.isSafeInteger(afterSeq)) throw validation('querystring.cursor is not a cursor returned by this API');
    }
    const limit = q.limit ?? 50;
    const rows = await listAudit(ctx.db, { afterSeq, limit: limit + 1, ...(q.subjectId ? { subjectId: q.subjectId } : {}), ...(q.type ? { type: q.type } : {}) });
    const data = rows.slice(0, limit);
    const last = data[data.length - 1];
    return { data, nextCursor: rows.length > limit && last ? Buffer.from(String(last.seq)).toString('base64url') : null };
  });

  app.get('/v1/audit-events/verify', {
    schema: { operationId: 'verifyAuditEvents',
      tags, summary: 'Recompute the hash chain',
      response: { 200: Type.Object({ valid: Type.Boolean(), count: Type.Integer(), firstInvalidSeq: Type.Union([Type.Integer(), Type.Null()]) }), ...errors() },
    },
  }, async () => verifyAudit(ctx.db));
}
