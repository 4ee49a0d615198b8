import { defineConfig } from 'vitest/config';

// Every test file runs twice: once on embedded PGlite, once on the PostgreSQL server.
const shared = {
  include: ['test/**/*.test.ts'],
  testTimeout: 60_000,
  hookTimeout: 120_000,
};

export default defineConfig({
  test: {
    projects: [
      { test: { ...shared, name: 'pglite', env: { LETHE_TEST_DB: 'pglite' } } },
      { test: { ...shared, name: 'postgres', env: { LETHE_TEST_DB: 'postgres' } } },
    ],
  },
});
