import crypto from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Access } from '../plugin/registry.ts';
import { findPrincipal, type Principal } from '../auth/api-keys.ts';
import type { Db } from '../db/database.ts';
import type { Secrets } from '../secrets.ts';
import { AppError } from './errors.ts';
import { clientAddressOf, createLimiter } from './rate-limit.ts';

export type { Access };
export const ACCESS_LEVELS: readonly Access[] = ['operator', 'application', 'any', 'public'];

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

const isAccess = (value: unknown): value is Access => ACCESS_LEVELS.includes(value as Access);

/** One registered route and who may call it: the live route table tests are generated from. */
export interface RouteEntry { method: string; url: string; access: Access; hidden: boolean }
const routeTables = new WeakMap<FastifyInstance, RouteEntry[]>();
export const routeTableOf = (app: FastifyInstance): RouteEntry[] => routeTables.get(app) ?? [];

/** `Bearer <key>`, the scheme in any case; anything else is no key. */
export function bearerKeyOf(header: unknown): string | null {
  if (typeof header !== 'string') return null;
  const match = /^bearer[ \t]+(\S{1,512})[ \t]*$/i.exec(header);
  return match?.[1] ?? null;
}

export interface AuthOptions {
  secrets: Pick<Secrets, 'apiKeyHashKey'>;
  /** Requests per minute per key (after the lookup) and per client address (before it). */
  perKeyPerMinute: number;
  perAddressPerMinute: number;
  /** Per-request checks on a known key beyond revocation (expiry, last use): the key lifecycle service. */
  keys?: KeyAdmission;
}

/** Per-request checks on a known key beyond revocation (expiry, last use): the key lifecycle service. */
export interface KeyAdmission { admit(principal: Principal): Promise<void> }

/**
 * Bearer authentication, decided by the matched route's declaration only (never the URL's text,
 * which the router decodes differently): every route must declare `config.access`, else
 * registering it throws and the server does not start. Missing or unknown key: 401; wrong kind:
 * 403. Rate limits: per client address before the key lookup, per key (its id) right after.
 */
export function registerAuth(app: FastifyInstance, db: Db, options: AuthOptions) {
  app.decorateRequest('principal', null);
  const table: RouteEntry[] = [];
  routeTables.set(app, table);
  const byAddress = createLimiter(options.perAddressPerMinute, 'requests from this address');
  const byKey = createLimiter(options.perKeyPerMinute, 'requests for this key');
  app.addHook('onRoute', (route) => {
    const access = (route.config as { access?: unknown } | undefined)?.access;
    if (!isAccess(access)) {
      throw new Error(`Route ${[route.method].flat().join(',')} ${route.url} declares no access `
        + `(config.access must be one of ${ACCESS_LEVELS.join(', ')}): refusing to start`);
    }
    for (const method of [route.method].flat()) {
      if (method === 'HEAD') continue;
      const hidden = (route.schema as { hide?: boolean } | undefined)?.hide === true;
      table.push({ method, url: route.url, access, hidden });
    }
  });
  app.addHook('onRequest', async (request) => {
    // No route matched: the not-found handler answers 404 whoever asks (the route list is public).
    if (request.routeOptions.url === undefined) return;
    const access = request.routeOptions.config.access;
    if (!isAccess(access)) throw new AppError('forbidden', 'This route declares no access'); // unreachable: refused at start
    if (access === 'public') return;
    byAddress.take(`ip:${clientAddressOf(request)}`);
    const key = bearerKeyOf(request.headers.authorization);
    if (!key) {
      throw new AppError('unauthorized', 'Send an API key as "Authorization: Bearer <key>"', undefined,
        { 'www-authenticate': 'Bearer' });
    }
    const local = localTokens.get(app);
    const isLocalCli = local !== undefined && key.length === local.length && crypto.timingSafeEqual(Buffer.from(key), Buffer.from(local));
    const principal = isLocalCli
      ? { keyId: LOCAL_CLI_KEY_ID, kind: 'operator' as const, applicationIds: [] }
      : await findPrincipal(db, key, options.secrets.apiKeyHashKey);
    if (!principal) throw new AppError('unauthorized', 'Unknown or revoked API key', undefined, { 'www-authenticate': 'Bearer' });
    byKey.take(`key:${principal.keyId}`);
    // The local CLI token is no API key: it has no row to expire or to mark as used.
    if (options.keys && !isLocalCli) await options.keys.admit(principal);
    request.principal = principal;
    if (access !== 'any' && principal.kind !== access) {
      throw new AppError('forbidden', `This call needs an ${access} key; this is an ${principal.kind} key`);
    }
  });
}
