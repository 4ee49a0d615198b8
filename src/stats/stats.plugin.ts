import type { DomainPlugin } from '../plugin/registry.ts';
import { registerStatsRoutes } from './stats.routes.ts';

/** Statistics for the console's overview (GET /v1/stats): per local day and per application. */
export const statsPlugin: DomainPlugin = {
  name: 'stats',
  plug(ctx, r) {
    r.routes((app) => registerStatsRoutes(app, ctx));
  },
};
