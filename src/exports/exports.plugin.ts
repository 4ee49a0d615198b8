import type { Ctx } from '../context.ts';
import type { ServicesCore } from '../services.ts';

/** Dataset exports and the data-subject export. */
export function plugExports(_ctx: Ctx, _s: ServicesCore): void {
  // Nothing yet.
}
