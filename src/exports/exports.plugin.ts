import type { DomainPlugin } from '../plugin/registry.ts';
import { registerExportRoutes } from './exports.routes.ts';
import { createExportsService } from './exports.service.ts';

/** Dataset exports (`GET /v1/exports/{dataset}`), deleted customers pseudonymized. */
export const exportsPlugin: DomainPlugin = {
  name: 'exports',
  plug(ctx, r) {
    const exports = createExportsService(ctx);
    r.routes((app) => registerExportRoutes(app, exports));
  },
};
