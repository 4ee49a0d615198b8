import { sql } from 'kysely';
import { Type } from 'typebox';
import type { Migration } from 'kysely/migration';
import type { TypedApp } from '../plugin/registry.ts';
import { pendingMigrations } from '../db/database.ts';
import type { Ctx } from '../context.ts';
import { sendProblem } from './errors.ts';
import { backupLocationProblem } from '../deployment/guards.ts';
import { NoQuery, ProblemRef } from './schemas.ts';

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
      tags: ['ops'], summary: 'Readiness: database reachable, migrations applied, backup location reachable', querystring: NoQuery,
      response: { 200: Type.Object({ status: Type.Literal('ready'), database: Type.String() }), 400: ProblemRef, 503: ProblemRef },
    },
  }, async (_request, reply) => {
    try {
      await sql`SELECT 1`.execute(ctx.db);
      const pending = await pendingMigrations(ctx.db, deps.migrations());
      if (pending > 0) return sendProblem(reply, 'unavailable', `${pending} migration(s) not applied`);
      // Deletions need the shared backup location (the erasure journal): not ready without it.
      const problem = await backupLocationProblem(ctx.db, ctx.config);
      if (problem) return sendProblem(reply, 'backup_location_unavailable', problem);
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
      },
    },
  }, async (_request, reply) => {
    await deps.refreshGauges().catch(() => undefined);
    reply.type(ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
}
