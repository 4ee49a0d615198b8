import { Type } from 'typebox';
import type { FastifyInstance } from 'fastify';
import { existingApplicationIds } from '../applications/applications.repo.ts';
import { appendAudit } from '../audit/audit.repo.ts';
import { insertKey } from '../auth/api-keys.ts';
import type { Ctx } from '../context.ts';
import { LOCAL_CLI_KEY_ID, principalOf } from '../http/auth.ts';
import { AppError, validation } from '../http/errors.ts';
import { errors } from '../http/schemas.ts';
import type { ServicesCore } from '../services.ts';
import { operationalRetentionTask, outboxGauges } from './operational-retention.ts';
import { createBackupScheduler } from './scheduled-backups.ts';

/** Many instances, one truth (issue 11): pruning, outbox gauges, scheduled backups, the local CLI's key route. */
export function plugDeployment(ctx: Ctx, s: ServicesCore): void {
  s.retentionTasks.push(operationalRetentionTask(ctx.db));
  s.gaugeRefreshers.push(outboxGauges(ctx));
  if (ctx.config.schedulerEnabled) s.background.push(createBackupScheduler(ctx));
  s.extraRoutes.push((app) => registerCliKeyRoute(app, ctx));
}

/** `lethe keys create` while a server serves the embedded database (src/cli/server-client.ts). Local CLI only. */
function registerCliKeyRoute(app: FastifyInstance, ctx: Ctx) {
  app.post('/v1/cli/keys', {
    schema: {
      hide: true, tags: ['ops'], summary: 'Local CLI only: issue an API key (lethe keys create)',
      body: Type.Object({
        kind: Type.Union([Type.Literal('operator'), Type.Literal('application')]),
        applicationIds: Type.Array(Type.String({ maxLength: 100 }), { maxItems: 100 }),
      }, { additionalProperties: false }),
      response: { 201: Type.Object({ id: Type.String(), key: Type.String() }), ...errors(404) },
    },
  }, async (request, reply) => {
    if (principalOf(request).keyId !== LOCAL_CLI_KEY_ID) throw new AppError('not_found', 'This route serves only the lethe CLI on the machine running the embedded database');
    const { kind, applicationIds } = request.body as { kind: 'operator' | 'application'; applicationIds: string[] };
    const ids = kind === 'application' ? applicationIds : [];
    if (kind === 'application') {
      if (ids.length === 0) throw validation('name at least one application id');
      const known = ids.every((id) => /^[0-9a-f-]{36}$/i.test(id)) ? await existingApplicationIds(ctx.db, ids) : new Set<string>();
      const unknown = ids.filter((id) => !known.has(id));
      if (unknown.length) throw validation(`unknown application ${unknown.join(', ')}`);
    }
    const created = await ctx.db.transaction().execute(async (trx) => {
      const at = ctx.clock.now();
      const k = await insertKey(trx, { kind, applicationIds: ids, createdByKeyId: null, at });
      await appendAudit(trx, { type: 'api_key.created', actorKeyId: null, subjectType: 'api_key', subjectId: k.id, at, data: { kind, applicationIds: ids, via: 'cli' } });
      return k;
    });
    reply.code(201);
    return { id: created.id, key: created.key };
  });
}
