import type { FastifyInstance, FastifyRequest } from 'fastify';
import { findPrincipal, type Principal } from '../auth/api-keys.ts';
import type { Db } from '../db/database.ts';
import { AppError } from './errors.ts';

export type Access = 'operator' | 'application' | 'any' | 'public';

declare module 'fastify' {
  interface FastifyContextConfig { access?: Access }
  interface FastifyRequest { principal: Principal | null }
}

/** The authenticated caller; routes marked public never call this. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new AppError('unauthorized', 'Missing API key');
  return request.principal;
}

/**
 * Bearer authentication for every /v1 route. Missing or unknown key: 401. Wrong kind: 403.
 * Routes declare who may call them in `config.access` (operator by default).
 */
export function registerAuth(app: FastifyInstance, db: Db) {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    const access: Access = request.routeOptions.config?.access
      ?? (request.url.startsWith('/v1/') ? 'operator' : 'public');
    if (access === 'public') return;
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S{1,512})\s*$/i.exec(header) : null;
    if (!match?.[1]) {
      throw new AppError('unauthorized', 'Send an API key as "Authorization: Bearer <key>"', undefined,
        { 'www-authenticate': 'Bearer' });
    }
    const principal = await findPrincipal(db, match[1]);
    if (!principal) throw new AppError('unauthorized', 'Unknown or revoked API key', undefined, { 'www-authenticate': 'Bearer' });
    request.principal = principal;
    if (access !== 'any' && principal.kind !== access) {
      throw new AppError('forbidden', `This call needs an ${access} key; this is an ${principal.kind} key`);
    }
  });
}
