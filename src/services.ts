import type { Ctx } from './context.ts';
import { DOMAINS } from './domains.ts';
import { plugAll, type Ports, type Registry } from './plugin/registry.ts';

export type { BackgroundTask } from './plugin/registry.ts';

/**
 * Every service, wired from one context: each domain in src/domains.ts plugs its parts (routes,
 * deletion steps, jobs, observers, ports…) into one registry (src/plugin/registry.ts).
 */
export function createServices(ctx: Ctx) {
  const registry: Registry = plugAll(ctx, DOMAINS);
  return {
    registry,
    /** Deletion steps in the order they run (tests may insert a failing one). */
    deletionSteps: registry.deletionSteps,
    /** Background work (scheduler, dispatcher) started by main.ts. */
    background: registry.background,
    /** What one domain offers others (and tests): typed, provided once. */
    port: <K extends keyof Ports>(name: K): Ports[K] => registry.port(name),
  };
}

export type Services = ReturnType<typeof createServices>;
