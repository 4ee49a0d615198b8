import type { Ctx } from '../context.ts';
import type { ServicesCore } from '../services.ts';

/** Redaction at deletion, settings, the redaction backlog. */
export function plugErasure(_ctx: Ctx, _s: ServicesCore): void {
  // Nothing yet.
}
