import type { FastifyRequest } from 'fastify';
import { AppError } from './errors.ts';

/**
 * Fixed-window request budgets held in this process's memory: each instance counts its own
 * requests, so with N instances behind a balancer a client may spend up to N budgets per minute
 * (docs/security.md). Two budgets are charged per request to a route needing a key (src/http/auth.ts):
 * the client address before the key lookup, so floods of missing or wrong keys get 429, then the
 * key (by its id, however `Bearer` was spelled) before the handler.
 */
export interface Limiter {
  /** Charges one request to `bucket`; throws 429 rate_limited with Retry-After past the budget. */
  take(bucket: string): void;
}

export function createLimiter(perMinute: number, label = 'requests'): Limiter {
  const WINDOW = 60_000;
  let windowStart = 0;
  let counts = new Map<string, number>();
  return {
    take(bucket) {
      // The wall clock, not the injected one: budgets are about real request rates.
      const now = Date.now();
      if (now - windowStart >= WINDOW) { windowStart = now - (now % WINDOW); counts = new Map(); }
      const n = (counts.get(bucket) ?? 0) + 1;
      counts.set(bucket, n);
      if (n > perMinute) {
        const after = Math.max(1, Math.ceil((windowStart + WINDOW - now) / 1000));
        throw new AppError('rate_limited', `Rate limit of ${perMinute} ${label} per minute exceeded; retry in ${after} s`,
          undefined, { 'retry-after': String(after) });
      }
    },
  };
}

/** The caller's address: the socket's, or the X-Forwarded-For hop Fastify's trustProxy believes. */
export const clientAddressOf = (request: FastifyRequest): string => request.ip ?? 'unknown';
