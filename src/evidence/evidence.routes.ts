import { Type } from 'typebox';
import type { Ctx } from '../context.ts';
import { DeletionReceiptSchema } from '../erasure/deletion.routes.ts';
import { type DeletionService } from '../erasure/deletion.service.ts';
import { validation } from '../http/errors.ts';
import { DEFAULT_LIMIT, MAX_LIMIT, encodeCursor } from '../http/pagination.ts';
import { ListOf, PageQuerySchema, Timestamp, Uuid, errors } from '../http/schemas.ts';
import type { TypedApp } from '../plugin/registry.ts';
import { listReceipts } from './evidence.repo.ts';
import { ALGORITHM, currentSigningKey, listPublicKeys, signReceipt } from './receipt-keys.ts';

const tags = ['deletion'];

export const SignedReceiptSchema = Type.Object({
  receipt: Type.String({ description: 'The deletion receipt as RFC 8785 canonical JSON text: the exact bytes signed' }),
  signature: Type.String({ description: 'Ed25519 signature over the UTF-8 bytes of `receipt`, base64url' }),
  keyId: Type.String({ description: 'The signing key; its public half is in GET /v1/receipt-keys' }),
  algorithm: Type.Literal(ALGORITHM),
});

export const ReceiptKeysSchema = Type.Object({
  keys: Type.Array(Type.Object({
    keyId: Type.String(),
    algorithm: Type.String(),
    publicKey: Type.String({ description: 'Raw 32-byte Ed25519 public key, base64url' }),
    createdAt: Timestamp,
    retiredAt: Type.Union([Timestamp, Type.Null()], { description: 'When a rotation replaced it; still valid for receipts signed before' }),
  })),
});

/** Evidence an operator can hand over: receipts listed, signed, and the public keys that verify them. */
export function registerEvidenceRoutes(app: TypedApp, ctx: Ctx, deletion: () => DeletionService) {
  const { db } = ctx;

  app.get('/v1/deletions', {
    config: { access: 'operator' },
    schema: {
      tags, operationId: 'listDeletionReceipts', summary: 'Deletion receipts, newest first',
      querystring: Type.Object({
        from: Type.Optional(Timestamp), to: Type.Optional(Timestamp), ...PageQuerySchema,
      }, { additionalProperties: false }),
      response: { 200: ListOf(DeletionReceiptSchema), ...errors() },
    },
  }, async (request) => {
    const q = request.query;
    if (q.from && q.to && Date.parse(q.from) > Date.parse(q.to)) throw validation('querystring.from is after querystring.to');
    const limit = Math.min(q.limit ?? DEFAULT_LIMIT, MAX_LIMIT);
    const rows = await listReceipts(db, {
      ...(q.from ? { from: new Date(q.from) } : {}), ...(q.to ? { to: new Date(q.to) } : {}),
      ...(q.cursor ? { cursor: q.cursor } : {}), limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { data: await Promise.all(page.map((r) => deletion().receiptOf(r))), nextCursor: rows.length > limit && last ? encodeCursor(last.deletedAt, last.customerId) : null };
  });

  app.get('/v1/deletions/:customerId/signed', {
    config: { access: 'operator' },
    schema: {
      tags, operationId: 'getSignedDeletionReceipt',
      summary: 'The deletion receipt as canonical JSON (RFC 8785), signed with Ed25519',
      params: Type.Object({ customerId: Uuid }, { additionalProperties: false }),
      response: { 200: SignedReceiptSchema, ...errors(404) },
    },
  }, async (request) => {
    const receipt = await deletion().receipt(request.params.customerId);
    const key = await currentSigningKey(db, ctx.secrets.receiptSealKey, ctx.clock.now());
    // Dates as the API prints them (ISO-8601), so the signed text equals GET /v1/deletions/{id}.
    return signReceipt(JSON.parse(JSON.stringify(receipt)), key);
  });

  app.get('/v1/receipt-keys', {
    config: { access: 'public' },
    schema: {
      tags, operationId: 'listReceiptKeys', security: [],
      summary: 'Every receipt-signing public key (old ones kept), to verify signed receipts without trusting the database',
      response: { 200: ReceiptKeysSchema, ...errors() },
    },
  }, async () => {
    const keys = await listPublicKeys(db);
    if (keys.length === 0) {
      await currentSigningKey(db, ctx.secrets.receiptSealKey, ctx.clock.now());
      return { keys: await listPublicKeys(db) };
    }
    return { keys };
  });
}
