import type { Ctx } from '../context.ts';
import type { ServicesCore } from '../services.ts';
import { registerExportRoutes } from './exports.routes.ts';
import { createExportsService } from './exports.service.ts';

/** Dataset exports (`GET /v1/exports/{dataset}`), deleted customers pseudonymized. */
export function plugExports(ctx: Ctx, s: ServicesCore): void {
  const exports = createExportsService(ctx);
  s.extraRoutes.push((app) => registerExportRoutes(app, exports));
}
