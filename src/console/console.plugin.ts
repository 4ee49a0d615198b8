import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DomainPlugin, TypedApp } from '../plugin/registry.ts';

/** Where `vite build` writes the console (src/console/dist, gitignored; built by `npm install`). */
export const CONSOLE_DIST = path.join(path.dirname(fileURLToPath(import.meta.url)), 'dist');

const hidden = { schema: { hide: true }, config: { access: 'public' as const } };

/** The console page's own security headers: everything from this origin, nothing framed, no referrer. */
function securityHeaders(reply: { header(name: string, value: string): unknown }) {
  reply.header('content-security-policy',
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    + "frame-ancestors 'none'; base-uri 'self'; form-action 'self'");
  reply.header('x-content-type-options', 'nosniff');
  reply.header('referrer-policy', 'no-referrer');
  reply.header('x-frame-options', 'DENY');
}

/**
 * Serves the operator console (a static single-page app) at /console/ and redirects / there.
 * Files that exist are served as they are (hashed assets cached for a year); every other path
 * under /console/ gets index.html, so the app's own routes survive a reload.
 */
export async function registerConsole(app: TypedApp, options: { root?: string } = {}) {
  const root = options.root ?? CONSOLE_DIST;
  await app.register(fastifyStatic, { root, serve: false, decorateReply: true });

  app.get('/', hidden, async (_request, reply) => reply.redirect('/console/', 302));

  const serve = async (request: FastifyRequest<{ Params: { '*'?: string } }>, reply: FastifyReply) => {
    securityHeaders(reply);
    const rest = request.params['*'] ?? '';
    const file = path.normalize(rest).replace(/^(\.\.(\/|\\|$))+/, '');
    const full = path.join(root, file);
    if (file && full.startsWith(root + path.sep) && fs.existsSync(full) && fs.statSync(full).isFile()) {
      const immutable = file.startsWith(`assets${path.sep}`);
      reply.header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
      return reply.sendFile(file, { cacheControl: false });
    }
    if (!fs.existsSync(path.join(root, 'index.html'))) {
      return reply.code(503).type('text/plain; charset=utf-8')
        .send('The console is not built. Run `npm install` (or `node src/console/build.ts`) and restart.');
    }
    reply.header('cache-control', 'no-cache');
    return reply.sendFile('index.html', { cacheControl: false });
  };
  // With ignoreTrailingSlash, '/console' also answers '/console/'.
  app.get('/console', hidden, serve);
  app.get('/console/*', hidden, serve);
}

/** The operator console (static files; the API is its only backend). */
export const consolePlugin: DomainPlugin = {
  name: 'console',
  plug(_ctx, r) {
    r.routes((app) => registerConsole(app));
  },
};
