import crypto from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import * as repo from './idempotency.repo.ts';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/database.ts';
import { canonicalJson } from '../audit/canonical-json.ts';
import { AppError } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest { idempotency: { key: string; keyId: string } | null }
}

/** How long a stored response is replayed; purged afterwards by the retention job. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600_000;
// A row still without a response after this long belongs to a crashed request: it may be taken over.
const ABANDONED_MS = 60_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const WAIT_MS = 5_000;

function bodyHash(request: FastifyRequest): string {
  const body = Buffer.isBuffer(request.body) ? request.body.toString('base64') : canonicalJson(request.body ?? null);
  return crypto.createHash('sha256').update(`${request.method} ${request.url}\n${body}`).digest('hex');
}

function customerIdOf(request: FastifyRequest, payload: unknown): string | null {
  const body = payload && typeof payload === 'object' ? payload as { customerId?: unknown; id?: unknown } : {};
  const path = request.url.split('?')[0] ?? '';
  const params: unknown = request.params;
  const candidates = [
    // A record's response names its customer (e.g. a cancelled subscription): purged with that customer.
    body.customerId,
    path.startsWith('/v1/customers/') && params && typeof params === 'object' && 'id' in params ? params.id : undefined,
    path === '/v1/customers' ? body.id : undefined,
  ];
  // Only a well-formed id names a customer (a refused request may carry any text in its path).
  return (candidates.find((c) => typeof c === 'string' && UUID.test(c)) as string | undefined) ?? null;
}

function replay(reply: FastifyReply, statusCode: number, body: unknown) {
  reply.header('idempotent-replayed', 'true').code(statusCode);
  if (body === null) return reply.send();
  return reply.type(statusCode >= 400 ? 'application/problem+json' : 'application/json').send(JSON.stringify(body));
}

/**
 * Idempotency-Key on POST: the first request with a key claims it by inserting a row; a replay
 * with the same body gets the stored status and body; the same key with another body is 409.
 * A concurrent duplicate waits for the first to finish, so two racing requests make one effect.
 */
export function registerIdempotency(app: FastifyInstance, db: Db, clock: Clock) {
  app.decorateRequest('idempotency', null);
  // Every POST may answer 409 idempotency_key_reused / idempotency_key_in_flight: document it.
  app.addHook('onRoute', (route) => {
    const response = route.schema?.response as Record<string, unknown> | undefined;
    if (response && [route.method].flat().includes('POST')) response[409] ??= { $ref: 'Problem#' };
  });

  app.addHook('preHandler', async (request, reply) => {
    const key = request.headers['idempotency-key'];
    if (request.method !== 'POST' || key === undefined || !request.principal) return;
    if (typeof key !== 'string' || key.length < 1 || key.length > 255) {
      throw new AppError('validation_failed', 'Idempotency-Key must be 1 to 255 characters');
    }
    const keyId = request.principal.keyId;
    const hash = bodyHash(request);
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const now = clock.now();
      const claimed = await repo.claim(db, { keyId, key, method: request.method, path: request.url.split('?')[0]!, bodyHash: hash, at: now });
      if (claimed) {
        request.idempotency = { key, keyId };
        return;
      }
      const existing = await repo.find(db, keyId, key);
      if (!existing) continue; // removed between our insert and select: try to claim again
      const expired = now.getTime() - new Date(existing.createdAt).getTime() > IDEMPOTENCY_TTL_MS;
      const abandoned = existing.statusCode === null && now.getTime() - new Date(existing.createdAt).getTime() > ABANDONED_MS;
      if (expired || abandoned) {
        await repo.release(db, keyId, key, existing.createdAt);
        continue;
      }
      if (existing.bodyHash !== hash) {
        throw new AppError('idempotency_key_reused', 'This Idempotency-Key was used with a different request body or path');
      }
      if (existing.statusCode !== null) return replay(reply, existing.statusCode, existing.responseBody);
      if (Date.now() > deadline) {
        throw new AppError('idempotency_key_in_flight', 'The first request with this Idempotency-Key is still running; retry later');
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const claim = request.idempotency;
    if (!claim) return payload;
    request.idempotency = null;
    if (reply.statusCode >= 500 || reply.statusCode === 429) {
      await repo.release(db, claim.keyId, claim.key); // not a result: let the client retry with the same key
      return payload;
    }
    let body: unknown = null;
    if (typeof payload === 'string' && payload.length > 0) {
      try { body = JSON.parse(payload); } catch { body = null; }
    }
    // A newly issued API key or webhook secret is shown once: never kept in a stored response
    // (a replay answers null in its place).
    if (body && typeof body === 'object') {
      for (const secret of ['key', 'webhookSecret']) {
        if (typeof (body as Record<string, unknown>)[secret] === 'string') body = { ...(body as Record<string, unknown>), [secret]: null };
      }
    }
    const customerId = customerIdOf(request, body);
    await db.transaction().execute(async (trx) => {
      // The response is stored after the handler committed, so a DELETE of its customer may have
      // committed in between, after purging the responses it could see. Holding the customer row
      // FOR SHARE orders the two: a DELETE in progress finishes first and the body is not kept;
      // a DELETE starting now waits, then purges this row.
      if (customerId && reply.statusCode < 300) {
        if (!await repo.holdLiveCustomer(trx, customerId)) body = null;
      }
      await repo.storeResponse(trx, claim.keyId, claim.key, { statusCode: reply.statusCode, body, customerId });
    });
    return payload;
  });
}
