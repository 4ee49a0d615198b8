import { Type } from 'typebox';
import type { DomainPlugin } from '../plugin/registry.ts';
import { registerHealthRoutes } from './health.routes.ts';
import { idempotencyPurgeTask } from '../jobs/retention-schedule.ts';
import { NoQuery, ProblemRef } from './schemas.ts';

/** Operations routes (health, readiness, metrics, the OpenAPI document) and the idempotency store's purge. */
export const httpPlugin: DomainPlugin = {
  name: 'http',
  plug(ctx, r) {
    const registry = () => r.registry();
    r.routes((app) => {
      registerHealthRoutes(app, ctx, {
        refreshGauges: async () => { for (const g of registry().gauges) await g(); },
        migrations: () => registry().migrations,
      });
      app.get('/openapi.json', {
        config: { access: 'public' },
        schema: {
          operationId: 'getOpenApiDocument', tags: ['ops'], summary: 'This OpenAPI 3.1 document', querystring: NoQuery,
          response: { 200: Type.Object({}, { additionalProperties: true }), 400: ProblemRef },
        },
      }, async () => app.swagger());
    });
    r.retentionTask(idempotencyPurgeTask(ctx.db));
  },
};
