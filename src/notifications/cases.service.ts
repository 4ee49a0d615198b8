import type { Ctx } from '../context.ts';
import { createCasesApi, type CasesDeps } from './cases.api.ts';
import { createCaseLifecycle } from './cases.lifecycle.ts';
import { createDailyPass } from './cases.pass.ts';

export type { CaseFilter, CaseView, CasesDeps, ConfirmationView } from './cases.api.ts';
export type { BatchOptions } from './cases.pass.ts';
export { notificationZone } from './case-events.ts';

/**
 * Deletion cases, in three parts: the lifecycle other domains drive (cases.lifecycle.ts), the
 * scheduled grace sweep and daily pass (cases.pass.ts), and the application API (cases.api.ts).
 */
export function createCasesService(ctx: Ctx, deps: CasesDeps) {
  return { ...createCaseLifecycle(ctx), ...createDailyPass(ctx), ...createCasesApi(ctx, deps) };
}

export type CasesService = ReturnType<typeof createCasesService>;
