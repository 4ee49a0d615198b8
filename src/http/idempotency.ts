import crypto from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import * as repo from './idempotency.repo.ts';
import type { Clock } from '../clock.ts';
import type { FieldCrypto } from '../crypto/field-crypto.ts';
import type { Db } from '../db/database.ts';
import { canonicalJson } from '../audit/canonical-json.ts';
import { AppError } from './errors.ts';
import { readSettingsSection } from '../settings/settings.repo.ts';

declare module 'fastify' {
  interface FastifyRequest { idempotency: { key: string; keyId: string } | null }
}

/**
 * How long a stored response is replayed: settings.idempotencyRetentionHours (default 24, 1..720;
 * deployment section, migration 0014). Older rows are not replayed (the request runs again) and
 * are deleted by the retention job's `idempotency-keys` task.
 */
export async function idempotencyRetentionMs(db: Db): Promise<number> {
  const { idempotencyRetentionHours } = await readSettingsSection(db, 'deployment');
  return idempotencyRetentionHours * 3600_000;
}
// A row still without a response after this long belongs to a crashed request: it may be taken over.
const ABANDONED_MS = 60_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const WAIT_MS = 5_000;

/**
 * What the request is, as the router understood it: the matched route's pattern and the parsed
 * params and query, never the URL's text (`/v1/customer%73` and `/v1/customers` are one request).
 */
function requestIdentity(request: FastifyRequest): string {
  return `${request.method} ${request.routeOptions.url ?? ''} ${canonicalJson(request.params ?? {})} ${canonicalJson(request.query ?? {})}`;
}

function requestText(request: FastifyRequest): string {
  const body = Buffer.isBuffer(request.body) ? request.body.toString('base64') : canonicalJson(request.body ?? null);
  return `${requestIdentity(request)}\n${body}`;
}

/**
 * What is stored to recognise a replay: an HMAC of the request (its body often holds an e-mail, and
 * an unkeyed hash of a guessable value can be confirmed by anyone holding a copy of the table).
 * Prefixed `h1:`; rows written before it (plain SHA-256 hex) still match until they expire.
 */
const KEYED = 'h1:';
function bodyHash(request: FastifyRequest, hashKey: Buffer): string {
  return KEYED + crypto.createHmac('sha256', hashKey).update(requestText(request)).digest('hex');
}
function sameRequest(stored: string, request: FastifyRequest, keyed: string): boolean {
  if (stored.startsWith(KEYED)) return stored === keyed;
  return stored === crypto.createHash('sha256').update(requestText(request)).digest('hex');
}

/** The customer a stored response is about: from the matched route's pattern and parsed params. */
export function customerIdOf(request: FastifyRequest, payload: unknown): string | null {
  const body = payload && typeof payload === 'object' ? payload as { customerId?: unknown; id?: unknown } : {};
  const route = request.routeOptions.url ?? '';
  const params: unknown = request.params;
  const candidates = [
    // A record's response names its customer (e.g. a cancelled subscription): purged with that customer.
    body.customerId,
    route.startsWith('/v1/customers/:id') && params && typeof params === 'object' && 'id' in params ? params.id : undefined,
    route === '/v1/customers' ? body.id : undefined,
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
/** Stored responses are encrypted under their customer's key; the associated data binds the row (key id and key). */
const rowId = (apiKeyId: string, key: string) => `${apiKeyId}/${key}`;

export function registerIdempotency(app: FastifyInstance, db: Db, clock: Clock, fc: FieldCrypto, hashKey: Buffer) {
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
    const hash = bodyHash(request, hashKey);
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const now = clock.now();
      const claimed = await repo.claim(db, { keyId, key, method: request.method, path: request.routeOptions.url ?? '', bodyHash: hash, at: now });
      if (claimed) {
        request.idempotency = { key, keyId };
        return;
      }
      const existing = await repo.find(db, keyId, key);
      if (!existing) continue; // removed between our insert and select: try to claim again
      const expired = now.getTime() - new Date(existing.createdAt).getTime() > await idempotencyRetentionMs(db);
      const abandoned = existing.statusCode === null && now.getTime() - new Date(existing.createdAt).getTime() > ABANDONED_MS;
      if (expired || abandoned) {
        await repo.release(db, keyId, key, existing.createdAt);
        continue;
      }
      if (!sameRequest(existing.bodyHash, request, hash)) {
        throw new AppError('idempotency_key_reused', 'This Idempotency-Key was used with a different request body or path');
      }
      if (existing.statusCode !== null) {
        let body = existing.responseBody;
        if (existing.customerId && fc.isSealed(body)) {
          const dek = (await fc.keysOf(db, [existing.customerId])).get(existing.customerId);
          // A stored response whose customer's key is gone (deleted since) replays without its body.
          body = dek ? fc.decryptRow('idempotency_keys', { responseBody: body }, rowId(keyId, key), dek).responseBody : null;
        }
        return replay(reply, existing.statusCode, body);
      }
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
        else if (body !== null) {
          // Sealed under the customer's key (data map: idempotency_keys.response_body), stored as a JSON string.
          const dek = await fc.keyFor(trx, customerId, clock.now());
          body = JSON.parse(fc.encryptRow('idempotency_keys', { responseBody: JSON.stringify(body) }, rowId(claim.keyId, claim.key), dek).responseBody as string);
        }
      }
      await repo.storeResponse(trx, claim.keyId, claim.key, { statusCode: reply.statusCode, body, customerId });
    });
    return payload;
  });
}
