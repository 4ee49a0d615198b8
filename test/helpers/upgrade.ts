// The setup every upgrade test shares: a copy of the last landed release's database
// (release-fixture.ts) served by this checkout, closed after the file.
import { afterAll, beforeAll } from 'vitest';
import { loadReleaseFixture, type ReleaseFixture } from './release-fixture.ts';
import { createTestEnv, type TestEnv } from './runtime.ts';

export interface UpgradeOptions {
  /** Extra environment for the server (e.g. release 1's admin key as LETHE_ADMIN_KEY). */
  env?: (fx: ReleaseFixture) => Record<string, string>;
  /** Runs on the loaded fixture before this checkout starts on it (to record its state as release 1 left it). */
  beforeStart?: (fx: ReleaseFixture) => void | Promise<void>;
  /** Clock start; default 2026-11-27T10:00:00Z, after everything the fixture holds. */
  clockStart?: string | null;
}

/**
 * Registers beforeAll/afterAll that load release 1's fixture and start this checkout on it;
 * `ready` receives both once started (assign them to the file's variables).
 */
export function useReleaseFixture(ready: (fx: ReleaseFixture, env: TestEnv) => void | Promise<void>, options: UpgradeOptions = {}) {
  let env: TestEnv | undefined;
  beforeAll(async () => {
    const fx = await loadReleaseFixture('release-1');
    await options.beforeStart?.(fx);
    const clockStart = options.clockStart === undefined ? '2026-11-27T10:00:00Z' : options.clockStart;
    env = await createTestEnv({ fixture: fx, ...(clockStart ? { clockStart } : {}), ...(options.env ? { env: options.env(fx) } : {}) });
    await ready(fx, env);
  }, 120_000);
  afterAll(async () => { await env?.close(); });
}
