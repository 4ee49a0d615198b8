import { defineConfig } from 'vitest/config';

// Every test file runs twice: once on embedded PGlite, once on a PostgreSQL server (which one:
// test/helpers/pg-server.ts, chosen once per run by the postgres project's globalSetup).
const shared = {
  include: ['test/**/*.test.ts'],
  testTimeout: 60_000,
  hookTimeout: 120_000,
};

export default defineConfig({
  test: {
    // The second reporter lists, at the end, the tests skipped for a missing tool (test/helpers/tools.ts).
    reporters: ['default', './test/helpers/tool-report.ts'],
    projects: [
      { test: { ...shared, name: 'pglite', env: { LETHE_TEST_DB: 'pglite' } } },
      { test: { ...shared, name: 'postgres', env: { LETHE_TEST_DB: 'postgres' }, globalSetup: ['./test/helpers/pg-global-setup.ts'] } },
    ],
  },
});
