import crypto from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import type { Ctx } from './context.ts';
import { registerAuth } from './http/auth.ts';
import { errorHandler, sendProblem } from './http/errors.ts';
import { registerIdempotency } from './http/idempotency.ts';
import { registerJsonBody } from './http/json-body.ts';
import { ProblemSchema } from './http/schemas.ts';
import { createValidatorCompiler } from './http/validation.ts';
import type { RequestTypeProvider } from './plugin/registry.ts';
import { createServices, type Services } from './services.ts';

export const BODY_LIMIT = 1024 * 1024;

/** Dates leave the API as ISO-8601 strings, wherever they sit in a response. */
function serializeDates(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(serializeDates);
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = serializeDates(v);
    return out;
  }
  return value;
}

export async function buildApp(ctx: Ctx, services: Services = createServices(ctx)): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: ctx.log as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT,
    // Fastify's request log lines carry URLs, which may hold an e-mail filter: we log our own, without them.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: () => crypto.randomUUID(),
    routerOptions: { ignoreTrailingSlash: true },
    // request.ip is the socket's address unless the socket is one of these proxies (then X-Forwarded-For's hop).
    trustProxy: ctx.config.trustedProxies.length > 0 ? ctx.config.trustedProxies : false,
    ajv: { customOptions: { removeAdditional: false } },
  });
  app.setValidatorCompiler(createValidatorCompiler());
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, 'not_found', `No route ${request.method} ${request.url.split('?')[0]}`));
  registerJsonBody(app, BODY_LIMIT);
  app.addContentTypeParser(/^image\//, { parseAs: 'buffer', bodyLimit: BODY_LIMIT }, (_req, body, done) => done(null, body));
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // Every response, API or console, errors included: no sniffing, no referrer, never framed.
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    reply.header('content-security-policy', "default-src 'none'; frame-ancestors 'none'");
  });
  app.addHook('preSerialization', async (_request, _reply, payload) => serializeDates(payload));
  app.addHook('onResponse', async (request, reply) => {
    const labels = { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) };
    ctx.metrics.httpRequests.inc(labels);
    ctx.metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
    request.log.info({ method: request.method, route: labels.route, status: reply.statusCode,
      ms: Math.round(reply.elapsedTime) }, 'request');
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Lethe', version: '1.0.0', description: 'Trustworthy customer deletion' },
      // Relative to the address the document is served from, so a generated client works against any deployment.
      servers: [{ url: '/', description: 'This Lethe server' }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  app.addSchema(ProblemSchema);

  // Any route with a body may answer 413 (over 1 MiB) or 415 (a content type it does not take).
  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat();
    const response = route.schema?.response as Record<string, unknown> | undefined;
    if (!response || !methods.some((m) => m === 'POST' || m === 'PUT' || m === 'PATCH')) return;
    response[413] ??= { $ref: 'Problem#' };
    response[415] ??= { $ref: 'Problem#' };
  });

  registerAuth(app, ctx.db, {
    secrets: ctx.secrets,
    perKeyPerMinute: ctx.config.rateLimitPerMinute,
    perAddressPerMinute: ctx.config.rateLimitPerAddressPerMinute,
    keys: services.port('apiKeys'),
  });
  registerIdempotency(app, ctx.db, ctx.clock, ctx.crypto, ctx.secrets.idempotencyHashKey);
  // Every domain's routes, in src/domains.ts order; handlers get typed params, query and body.
  const typed = app.withTypeProvider<RequestTypeProvider>();
  for (const { module } of services.registry.routes) await module(typed);

  await app.ready();
  return app;
}
