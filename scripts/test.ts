// `npm test`: type check, then the whole suite on PGlite and on PostgreSQL (vitest projects).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'inherit' }).status ?? 1;

console.log('> tsc --noEmit');
if (run('tsc', ['--noEmit']) !== 0) process.exit(1);

const report = '.vitest-report.json';
fs.rmSync(report, { force: true });
// The third reporter lists the tests skipped for a missing tool, with install commands (test/helpers/tools.ts).
const status = run('vitest', ['run', '--reporter=default', '--reporter=json', '--reporter=./test/helpers/tool-report.ts',
  `--outputFile.json=${report}`, ...process.argv.slice(2)]);
try {
  const r = JSON.parse(fs.readFileSync(report, 'utf8')) as { numPassedTests: number; numFailedTests: number; numPendingTests: number };
  // A plain closing line that any CI reader understands.
  console.log(`\nTests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
} catch {
  console.log('\nTests: 0 passed, 1 failed (no report written)');
}
process.exit(status);
