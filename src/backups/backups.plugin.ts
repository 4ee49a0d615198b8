import type { Ctx } from '../context.ts';
import type { ServicesCore } from '../services.ts';
import { createSubjectExport, registerSubjectExportRoute } from './subject-export.ts';

/** Pre-deletion archives, database backups, restore with erasure replay. */
export function plugBackups(ctx: Ctx, s: ServicesCore): void {
  const subjectExport = createSubjectExport({ blobs: ctx.blobs, now: () => ctx.clock.now() });
  s.shared.subjectExport = subjectExport;
  s.extraRoutes.push((app) => registerSubjectExportRoute(app, ctx, subjectExport));
}
