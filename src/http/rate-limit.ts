import crypto from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import { AppError } from './errors.ts';

/**
 * Per-key rate limit on the API: each bearer key has its own budget, so one noisy key never
 * slows another; requests without a key are counted per client address. Over the limit: 429
 * problem+json with Retry-After.
 */
export async function registerRateLimit(app: FastifyInstance, perMinute: number) {
  await app.register(rateLimit, {
    global: true,
    max: perMinute,
    timeWindow: 60_000,
    hook: 'onRequest',
    allowList: (request) => !request.url.startsWith('/v1/'),
    keyGenerator: (request) => {
      const auth = request.headers.authorization;
      return typeof auth === 'string' && auth.length > 0
        ? `key:${crypto.createHash('sha256').update(auth).digest('hex').slice(0, 32)}`
        : `ip:${request.ip}`;
    },
    errorResponseBuilder: (_request, context) =>
      new AppError('rate_limited', `Rate limit of ${context.max} requests per minute exceeded; retry in ${context.after}`),
  });
}
