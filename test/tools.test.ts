// The missing-tool helper (test/helpers/tools.ts) and its end-of-run block (tool-report.ts): a
// missing tool is listed with its install command outside CI and fails the suite under CI=true.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_DB } from './helpers/runtime.ts';
import { checkTool, toolPath, underCi } from './helpers/tools.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-tools-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** An executable that prints `name (PostgreSQL) <major>.2` like the real client tools. */
function fakeTool(name: string, major: number): string {
  const p = path.join(tmp, `${name}-${major}`);
  fs.writeFileSync(p, `#!/bin/sh\necho "${name} (PostgreSQL) ${major}.2"\n`, { mode: 0o755 });
  return p;
}

// Pure helpers: once is enough (the pglite project).
describe.runIf(TEST_DB === 'pglite')('tool lookup', () => {
  it('honours the overrides, so the missing path can be tested on a machine that has the tool', () => {
    expect(toolPath('pgbench', { PATH: '', LETHE_TOOL_PGBENCH: '/nonexistent/pgbench' })).toBeNull();
    expect(toolPath('chromium', { LETHE_CHROMIUM: '/nonexistent/chromium' })).toBeNull();
    const fake = fakeTool('psql', 15);
    expect(toolPath('psql', { PATH: '', LETHE_TOOL_PSQL: fake })).toBe(fake);
    expect(toolPath('psql', { PATH: tmp })).toBeNull(); // on PATH only under its own name
    fs.copyFileSync(fake, path.join(tmp, 'psql'));
    expect(toolPath('psql', { PATH: `/nonexistent:${tmp}` })).toBe(path.join(tmp, 'psql'));
  });

  it('names what is missing and the command that installs it', () => {
    expect(checkTool('chromium', null, { LETHE_CHROMIUM: '/nonexistent/chromium' })).toEqual({
      tool: 'chromium', problem: 'no Chromium at /nonexistent/chromium', install: 'apt-get install -y chromium', systemServerOnly: false,
    });
    const pgbench = checkTool('pgbench', { kind: 'system', major: 15 }, { PATH: '/nonexistent' });
    expect(pgbench).toMatchObject({ problem: 'no pgbench found on PATH', install: 'apt-get install -y postgresql-15', systemServerOnly: false });
    expect(checkTool('pgbench', { kind: 'system', major: 17 }, { PATH: '/nonexistent' })?.install).toBe('apt-get install -y postgresql-client-17');
  });

  it('wants pg_dump, pg_restore and psql at least of the server version; on the embedded server that means "system server only"', () => {
    const dump15 = { LETHE_TOOL_PG_DUMP: fakeTool('pg_dump', 15) };
    expect(checkTool('pg_dump', { kind: 'system', major: 15 }, dump15)).toBeNull();
    expect(checkTool('pg_dump', { kind: 'url', major: 14 }, dump15)).toBeNull();
    expect(checkTool('pg_dump', { kind: 'url', major: 18 }, dump15)).toEqual({
      tool: 'pg_dump', problem: 'pg_dump 15 cannot serve PostgreSQL 18', install: 'apt-get install -y postgresql-client-18', systemServerOnly: false,
    });
    expect(checkTool('pg_dump', { kind: 'embedded', major: 18 }, dump15)).toMatchObject({ systemServerOnly: true });
    expect(checkTool('pg_restore', { kind: 'embedded', major: 18 }, { LETHE_TOOL_PG_RESTORE: fakeTool('pg_restore', 18) })).toBeNull();
  });

  it('reads CI the way CI services set it', () => {
    expect(underCi({ CI: 'true' })).toBe(true);
    expect(underCi({ CI: '1' })).toBe(true);
    expect(underCi({ CI: 'false' })).toBe(false);
    expect(underCi({})).toBe(false);
  });
});

describe.runIf(TEST_DB === 'pglite')('a suite needing a missing tool, in a real vitest run', () => {
  const run = (ci: boolean) => {
    const env: NodeJS.ProcessEnv = { ...process.env, LETHE_TOOL_PGBENCH: '/nonexistent/pgbench', NO_COLOR: '1', FORCE_COLOR: '0' };
    delete env.CI;
    delete env.VITEST; delete env.VITEST_POOL_ID; delete env.VITEST_WORKER_ID; delete env.TEST;
    if (ci) env.CI = 'true';
    const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'test/fixtures/tools/vitest.config.ts'],
      { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
    return { code: r.status, out: `${r.stdout}${r.stderr}` };
  };

  it('outside CI: skipped, and one block at the end names the test and the install command', () => {
    const r = run(false);
    expect(r.code, r.out).toBe(0);
    const block = r.out.slice(r.out.indexOf('──── Skipped: tests needing'));
    expect(block).toContain('pgbench: no pgbench found at /nonexistent/pgbench');
    expect(block).toContain('install: apt-get install -y postgresql-15');
    expect(block).toContain('needs-pgbench.fixture.ts › a suite that drives pgbench > would run pgbench');
    expect(block).not.toContain('an ordinary test');
    expect(r.out).toMatch(/1 passed \| 1 skipped/);
  });

  it('under CI=true: the suite fails, naming the tool and the install command', () => {
    const r = run(true);
    expect(r.code).toBe(1);
    expect(r.out).toContain('has pgbench (CI=true: a missing tool fails)');
    expect(r.out).toContain('no pgbench found at /nonexistent/pgbench; install with: apt-get install -y postgresql-15');
    expect(r.out).not.toContain('──── Skipped');
  });
});
