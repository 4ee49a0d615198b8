import { sql } from 'kysely';
import { Type } from 'typebox';
import type { FastifyInstance } from 'fastify';
import { pendingMigrations } from '../db/database.ts';
import type { Ctx } from '../context.ts';
import { sendProblem } from './errors.ts';
import { backupLocationProblem } from '../deployment/guards.ts';
import { ProblemRef } from './schemas.ts';

export function registerHealthRoutes(app: FastifyInstance, ctx: Ctx, refreshGauges: () => Promise<void>) {
  const publicRoute = { access: 'public' as const };
  app.get('/healthz', {
    config: publicRoute,
    schema: { tags: ['ops'], summary: 'Liveness', response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
  }, async () => ({ status: 'ok' as const }));

  app.get('/readyz', {
    config: publicRoute,
    schema: {
      tags: ['ops'], summary: 'Readiness: database reachable, migrations applied, backup location reachable',
      response: { 200: Type.Object({ status: Type.Literal('ready'), database: Type.String() }), 503: ProblemRef },
    },
  }, async (_request, reply) => {
    try {
      await sql`SELECT 1`.execute(ctx.db);
      const pending = await pendingMigrations(ctx.db);
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
    schema: {
      tags: ['ops'], summary: 'Prometheus metrics',
      response: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } },
    },
  }, async (_request, reply) => {
    await refreshGauges().catch(() => undefined);
    reply.type(ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
}
