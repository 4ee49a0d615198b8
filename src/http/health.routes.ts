import crypto from 'node:crypto';
import { sql } from 'kysely';
import { Type } from 'typebox';
import type { Migration } from 'kysely/migration';
import type { TypedApp } from '../plugin/registry.ts';
import { pendingMigrations } from '../db/database.ts';
import type { Ctx } from '../context.ts';
import { bearerKeyOf } from './auth.ts';
import { sendProblem } from './errors.ts';
import { sharedLocationProblem } from '../deployment/guards.ts';
import { NoQuery, ProblemRef } from './schemas.ts';

/** Constant-time comparison of a presented token with the configured one. */
function tokenMatches(presented: string | null, expected: string): boolean {
  if (presented === null) return false;
  const a = crypto.createHash('sha256').update(presented).digest();
  const b = crypto.createHash('sha256').update(expected).digest();
  return crypto.timingSafeEqual(a, b);
}

export interface HealthDeps {
  /** Refreshes gauges computed from the database (every domain's), before a scrape. */
  refreshGauges(): Promise<void>;
  /** Every domain's migrations: /readyz is not ready while one is pending. */
  migrations(): Record<string, Migration>;
}

export function registerHealthRoutes(app: TypedApp, ctx: Ctx, deps: HealthDeps) {
  const publicRoute = { access: 'public' as const };
  app.get('/healthz', {
    config: publicRoute,
    schema: { operationId: 'getHealth', tags: ['ops'], summary: 'Liveness', querystring: NoQuery,
      response: { 200: Type.Object({ status: Type.Literal('ok') }), 400: ProblemRef } },
  }, async () => ({ status: 'ok' as const }));

  app.get('/readyz', {
    config: publicRoute,
    schema: { operationId: 'getReadiness',
      tags: ['ops'], summary: 'Readiness: database reachable, migrations applied, backup location and keyring reachable', querystring: NoQuery,
      response: { 200: Type.Object({ status: Type.Literal('ready'), database: Type.String() }), 400: ProblemRef, 503: ProblemRef },
    },
  }, async (_request, reply) => {
    try {
      await sql`SELECT 1`.execute(ctx.db);
      const pending = await pendingMigrations(ctx.db, deps.migrations());
      if (pending > 0) return sendProblem(reply, 'unavailable', `${pending} migration(s) not applied`);
      // Deletions need the shared locations (erasure journal, keyring): not ready without them.
      const problem = await sharedLocationProblem(ctx.db, ctx.config, ctx.crypto.keys.keyring);
      if (problem) return sendProblem(reply, problem.code, problem.detail);
    } catch {
      return sendProblem(reply, 'unavailable', 'Database not reachable');
    }
    return { status: 'ready' as const, database: ctx.dbKind };
  });

  app.get('/metrics', {
    config: publicRoute,
    schema: { operationId: 'getMetrics',
      tags: ['ops'], summary: 'Prometheus metrics', querystring: NoQuery,
      response: {
        200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } },
        400: ProblemRef,
        401: ProblemRef,
      },
    },
  }, async (request, reply) => {
    const token = ctx.config.metricsToken;
    if (token !== undefined && !tokenMatches(bearerKeyOf(request.headers.authorization), token)) {
      reply.header('www-authenticate', 'Bearer');
      return sendProblem(reply, 'unauthorized', 'Send the metrics token as "Authorization: Bearer <LETHE_METRICS_TOKEN>"');
    }
    await deps.refreshGauges().catch(() => undefined);
    reply.type(ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
}
