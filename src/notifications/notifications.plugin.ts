import type { Ctx } from '../context.ts';
import type { ServicesCore } from '../services.ts';

/** Deletion cases, grace periods, the daily notification pass, the application API. */
export function plugNotifications(_ctx: Ctx, _s: ServicesCore): void {
  // Nothing yet.
}
