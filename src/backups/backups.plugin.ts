import type { Ctx } from '../context.ts';
import type { ServicesCore } from '../services.ts';

/** Pre-deletion archives, database backups, restore with erasure replay. */
export function plugBackups(_ctx: Ctx, _s: ServicesCore): void {
  // Nothing yet.
}
