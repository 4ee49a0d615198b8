import crypto from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Access } from '../plugin/registry.ts';
import { findPrincipal, type Principal } from '../auth/api-keys.ts';
import type { Db } from '../db/database.ts';
import { AppError } from './errors.ts';

export type { Access };

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
 * The local CLI talking to the running server (src/cli/server-client.ts) authenticates with the
 * token the server wrote into its data-directory lock file (mode 0600). It acts as an operator;
 * its audit rows carry this key id (no API key row has it).
 */
export const LOCAL_CLI_KEY_ID = '00000000-0000-0000-0000-000000000000';
const localTokens = new WeakMap<FastifyInstance, string>();
export function allowLocalCliToken(app: FastifyInstance, token: string): void { localTokens.set(app, token); }

/** Who may call a route: its declared `config.access`, else operator under /v1/ and public elsewhere. */
export const accessOf = (config: { access?: Access } | undefined, url: string): Access =>
  config?.access ?? (url.startsWith('/v1/') ? 'operator' : 'public');

/** One registered route and who may call it: the live route table tests are generated from. */
export interface RouteEntry { method: string; url: string; access: Access; hidden: boolean }
const routeTables = new WeakMap<FastifyInstance, RouteEntry[]>();
export const routeTableOf = (app: FastifyInstance): RouteEntry[] => routeTables.get(app) ?? [];

/**
 * Bearer authentication for every /v1 route. Missing or unknown key: 401. Wrong kind: 403.
 * Routes declare who may call them in `config.access` (operator by default).
 */
export function registerAuth(app: FastifyInstance, db: Db) {
  app.decorateRequest('principal', null);
  const table: RouteEntry[] = [];
  routeTables.set(app, table);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (method === 'HEAD') continue;
      const hidden = (route.schema as { hide?: boolean } | undefined)?.hide === true;
      table.push({ method, url: route.url, access: accessOf(route.config as { access?: Access }, route.url), hidden });
    }
  });
  app.addHook('onRequest', async (request) => {
    // No route matched: the not-found handler answers 404 whoever asks (the route list is public).
    if (request.routeOptions.url === undefined) return;
    const access: Access = accessOf(request.routeOptions.config, request.url);
    if (access === 'public') return;
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S{1,512})\s*$/i.exec(header) : null;
    if (!match?.[1]) {
      throw new AppError('unauthorized', 'Send an API key as "Authorization: Bearer <key>"', undefined,
        { 'www-authenticate': 'Bearer' });
    }
    const local = localTokens.get(app);
    const principal = local !== undefined && match[1].length === local.length && crypto.timingSafeEqual(Buffer.from(match[1]), Buffer.from(local))
      ? { keyId: LOCAL_CLI_KEY_ID, kind: 'operator' as const, applicationIds: [] }
      : await findPrincipal(db, match[1]);
    if (!principal) throw new AppError('unauthorized', 'Unknown or revoked API key', undefined, { 'www-authenticate': 'Bearer' });
    request.principal = principal;
    if (access !== 'any' && principal.kind !== access) {
      throw new AppError('forbidden', `This call needs an ${access} key; this is an ${principal.kind} key`);
    }
  });
}
