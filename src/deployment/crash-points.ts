/**
 * Test-only crash hook for the crash-window tests (test/crash-windows.test.ts): with
 * NODE_ENV=test and LETHE_TEST_CRASH_AT=<point>, the process kills itself with SIGKILL when it
 * reaches that point. Ignored unless NODE_ENV is exactly "test". Points: delete.before-commit,
 * delete.after-commit, journal.after-append (the journal file appended and fsync'd, its table
 * marks not committed), grace-sweep, notification-pass, restore, scheduled-backup (a scheduled
 * database backup, its slot claimed in job_runs, after the first table is written to its `.tmp` file).
 */
export function crashPoint(name: string): void {
  if (process.env.NODE_ENV !== 'test' || process.env.LETHE_TEST_CRASH_AT !== name) return;
  process.kill(process.pid, 'SIGKILL');
}
