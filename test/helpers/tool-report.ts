// Vitest reporter: at the end of the run, one block naming every suite describeNeeding() skipped
// (tools.ts), what is missing, and the command that installs it. Prints nothing when none skipped.
import type { Reporter, TestModule, TestSuite } from 'vitest/node';
import type { ToolProblem } from './tools.ts';

export interface SkippedGroup { problem: ToolProblem; tests: string[] }

/** Groups the skipped tests by what they lack (exported for its test). */
export function skippedForTools(modules: ReadonlyArray<TestModule>): SkippedGroup[] {
  const groups = new Map<string, SkippedGroup>();
  for (const m of modules) {
    for (const t of m.children.allTests()) {
      if (t.result().state !== 'skipped') continue;
      let needs: ToolProblem[] | undefined;
      for (let p: TestSuite | TestModule = t.parent; p.type === 'suite' && !needs; p = p.parent) needs = p.meta().letheNeeds;
      for (const problem of needs ?? []) {
        const key = `${problem.tool}\0${problem.problem}\0${problem.install}`;
        const g = groups.get(key) ?? { problem, tests: [] };
        g.tests.push(`[${m.project.name}] ${m.relativeModuleId} › ${t.fullName}`);
        groups.set(key, g);
      }
    }
  }
  return [...groups.values()];
}

export function formatBlock(groups: SkippedGroup[]): string {
  if (groups.length === 0) return '';
  const out = ['', '──── Skipped: tests needing what this machine or server lacks ────'];
  for (const g of groups) {
    out.push(`${g.problem.tool}: ${g.problem.problem}`);
    out.push(g.problem.systemServerOnly ? `  runs on the system PostgreSQL (npm test without LETHE_TEST_PG=embedded); or: ${g.problem.install}` : `  install: ${g.problem.install}`);
    const shown = g.tests.slice(0, 15);
    for (const t of shown) out.push(`  - ${t}`);
    if (g.tests.length > shown.length) out.push(`  … and ${g.tests.length - shown.length} more`);
  }
  out.push('Under CI=true a missing tool fails these tests instead of skipping them.', '');
  return out.join('\n');
}

export default class ToolReport implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const block = formatBlock(skippedForTools(modules));
    if (block) process.stdout.write(`${block}\n`);
  }
}
