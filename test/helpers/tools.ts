// Tests that need a program the machine may lack (Chromium, pgbench, pg_dump, pg_restore, psql).
//
//   describeNeeding('pg_dump', 'pg_restore')('restore from a pg_dump', () => { ... });
//
// All present → a plain describe. One missing → outside CI the suite is skipped and listed, with the
// command that installs the tool, in one block at the end of the run (tool-report.ts); under CI
// (CI=true) the suite fails instead — a missing tool never skips silently there.
// pg_dump, pg_restore and psql must be at least the server's major version (pg_dump 15 refuses a
// server 18). The embedded PostgreSQL brings only the server itself, so on it such suites are
// "system server only": skipped and listed even under CI (CI runs them on its PostgreSQL 15).
// Lookups can be pointed elsewhere (to test the missing path): LETHE_CHROMIUM=/path/to/chromium,
// LETHE_TOOL_PGBENCH, LETHE_TOOL_PG_DUMP, LETHE_TOOL_PG_RESTORE, LETHE_TOOL_PSQL=/path/to/binary.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, inject, it } from 'vitest';

export type Tool = 'chromium' | 'pgbench' | 'pg_dump' | 'pg_restore' | 'psql';

export interface ToolProblem {
  tool: Tool;
  /** What is wrong, in a few words. */
  problem: string;
  /** The command that installs what is missing. */
  install: string;
  /** True when only the embedded server is to blame: the suite runs on the system server. */
  systemServerOnly: boolean;
}

declare module 'vitest' {
  interface TaskMeta { letheNeeds?: ToolProblem[] }
}

export const underCi = (env: Record<string, string | undefined> = process.env): boolean =>
  !!env.CI && env.CI !== 'false' && env.CI !== '0';

function onPath(name: string, env: Record<string, string | undefined>): string | null {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch { /* next */ }
  }
  return null;
}

/** Where the tool is (after the LETHE_* override), or null. */
export function toolPath(tool: Tool, env: Record<string, string | undefined> = process.env): string | null {
  if (tool === 'chromium') {
    const p = env.LETHE_CHROMIUM ?? '/usr/bin/chromium';
    return fs.existsSync(p) ? p : null;
  }
  const override = env[`LETHE_TOOL_${tool.toUpperCase()}`];
  if (override !== undefined) {
    try { fs.accessSync(override, fs.constants.X_OK); return override; } catch { return null; }
  }
  return onPath(tool, env);
}

/** Major version printed by `tool --version` ("pg_dump (PostgreSQL) 15.20 …" → 15). */
export function toolMajor(p: string): number | null {
  const r = spawnSync(p, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const m = /\(PostgreSQL\)\s+(\d+)/.exec(r.stdout ?? '');
  return m ? Number(m[1]) : null;
}

export interface ServerInfo { kind: 'url' | 'system' | 'embedded'; major: number }

/** The server of this run (postgres project), or null (pglite project). */
function currentServer(): ServerInfo | null {
  try { return inject('lethePg') ?? null; } catch { return null; }
}

/** Why the tool cannot serve the tests, or null when it can. */
export function checkTool(tool: Tool, server: ServerInfo | null, env: Record<string, string | undefined> = process.env): ToolProblem | null {
  const major = server?.major ?? 15;
  const install = tool === 'chromium' ? 'apt-get install -y chromium'
    // Debian puts pgbench in the server package up to 15, in the client package from 16.
    : tool === 'pgbench' ? `apt-get install -y ${major <= 15 ? `postgresql-${major}` : `postgresql-client-${major}`}`
      : `apt-get install -y postgresql-client-${major}`;
  const p = toolPath(tool, env);
  if (p === null) {
    const where = tool === 'chromium' ? `no Chromium at ${env.LETHE_CHROMIUM ?? '/usr/bin/chromium'}` : `no ${tool} found${env[`LETHE_TOOL_${tool.toUpperCase()}`] ? ` at ${env[`LETHE_TOOL_${tool.toUpperCase()}`]}` : ' on PATH'}`;
    return { tool, problem: where, install, systemServerOnly: false };
  }
  if ((tool === 'pg_dump' || tool === 'pg_restore' || tool === 'psql') && server) {
    const have = toolMajor(p);
    if (have === null || have < server.major) {
      const embedded = server.kind === 'embedded';
      return {
        tool,
        problem: `${tool} ${have ?? '(version unknown)'} cannot serve PostgreSQL ${server.major}`
          + (embedded ? ' (the embedded server brings no client tools; these tests run on the system server)' : ''),
        install,
        systemServerOnly: embedded,
      };
    }
  }
  return null;
}

type SuiteFn = () => void;

/** A describe that runs when every tool is usable; see the file comment for what happens otherwise. */
export function describeNeeding(...tools: Tool[]): (title: string, fn: SuiteFn) => void {
  const server = currentServer();
  const problems = tools.map((t) => checkTool(t, server)).filter((p): p is ToolProblem => p !== null);
  return (title, fn) => {
    if (problems.length === 0) return describe(title, fn);
    const blocking = problems.filter((p) => !p.systemServerOnly);
    if (underCi() && blocking.length > 0) {
      return describe(title, () => {
        it(`has ${blocking.map((p) => p.tool).join(', ')} (CI=true: a missing tool fails)`, () => {
          throw new Error(blocking.map((p) => `${p.problem}; install with: ${p.install}`).join('\n'));
        });
      });
    }
    return describe(title, { skip: true, meta: { letheNeeds: problems } }, fn);
  };
}
