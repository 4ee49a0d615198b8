/** Time is injected so schedules and grace periods can be tested without waiting. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export interface FakeClock extends Clock {
  set(at: Date | string): void;
  advance(ms: number): void;
}

export function fakeClock(start: Date | string = '2026-01-01T00:00:00Z'): FakeClock {
  let current = new Date(start).getTime();
  return {
    now: () => new Date(current),
    set: (at) => { current = new Date(at).getTime(); },
    advance: (ms) => { current += ms; },
  };
}

export const DAY_MS = 86_400_000;
