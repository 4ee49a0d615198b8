// `npm run bench`: every benchmark figure of Lethe, on fresh databases, against the real server
// over HTTP with 16 concurrent connections. Prints a table and writes bench-results.json.
//
//   npm run bench                       full sizes (about 10 minutes on 2 cores)
//   npm run bench -- --quick            small sizes: a smoke run
//   npm run bench -- --only=delete      groups: delete, read, exports, notify, encryption (comma separated)
//   npm run bench -- --delete-customers=20000 --export-rows=1000000 ...  (see SIZES below)
//
// bench-results.json (bench-results.quick.json with --quick, so a smoke run never overwrites a
// full run's figures) holds the figures and where they come from: `commit` (+ `dirty`), `at`,
// `quick`, `sizes`, `groups`, `failedGroups`, `cores`, `loadavg` (before and after). A group that
// fails makes the process exit 1 (after writing the file and printing the table).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchDelete, deleteUnavailable } from './delete.ts';
import { benchExports, exportsUnavailable } from './exports.ts';
import { benchEncryption } from './encryption.ts';
import { benchNotify, notifyUnavailable } from './notify.ts';
import { benchRead, readUnavailable } from './read.ts';
import { log, PG_ADMIN_URL, pgClient, type GroupResult, type Row } from './lib.ts';

const FULL = {
  'delete-customers': 2_000, 'embedded-customers': 300, 'large-customers': 3, 'large-activity': 10_000,
  'large-transactions': 1_000, warmup: 160,
  'read-customers': 300, reads: 20_000, 'read-warmup': 2_000,
  'export-rows': 1_000_000, 'redact-customers': 100_000,
  'notify-cases': 1_000_000, 'dispatch-rows': 5_000,
  'crypto-deletes': 80, 'crypto-reads': 200, 'crypto-export-rows': 1_500, 'crypto-pglite': 1,
};
const QUICK: typeof FULL = {
  'delete-customers': 320, 'embedded-customers': 48, 'large-customers': 1, 'large-activity': 2_000,
  'large-transactions': 200, warmup: 32,
  'read-customers': 60, reads: 2_000, 'read-warmup': 400,
  'export-rows': 20_000, 'redact-customers': 2_000,
  'notify-cases': 20_000, 'dispatch-rows': 1_000,
  'crypto-deletes': 20, 'crypto-reads': 60, 'crypto-export-rows': 300, 'crypto-pglite': 1,
};
type Sizes = typeof FULL;
const GROUPS = ['delete', 'read', 'exports', 'notify', 'encryption'] as const;
type Group = typeof GROUPS[number];
/** The sizes each group uses (bench-results.json records those of the groups run). */
const GROUP_SIZES: Record<Group, Array<keyof Sizes>> = {
  delete: ['delete-customers', 'embedded-customers', 'large-customers', 'large-activity', 'large-transactions', 'warmup'],
  read: ['read-customers', 'reads', 'read-warmup'],
  exports: ['export-rows', 'redact-customers'],
  notify: ['notify-cases', 'dispatch-rows'],
  encryption: ['crypto-deletes', 'crypto-reads', 'crypto-export-rows', 'crypto-pglite'],
};

function parseArgs(argv: string[]): { sizes: Sizes; only: Set<Group>; out: string; quick: boolean } {
  const quick = argv.includes('--quick');
  const sizes: Sizes = { ...(quick ? QUICK : FULL) };
  let only = new Set<Group>(GROUPS);
  let out = quick ? 'bench-results.quick.json' : 'bench-results.json';
  for (const arg of argv) {
    if (arg === '--quick') continue;
    const m = /^--([a-z-]+)=(.+)$/.exec(arg);
    if (!m) throw new Error(`unknown argument ${arg} (try --quick, --only=delete,read,exports,notify,encryption, --<size>=N)`);
    const [, key, value] = m as unknown as [string, string, string];
    if (key === 'only') {
      const names = value.split(',');
      for (const name of names) if (!GROUPS.includes(name as Group)) throw new Error(`unknown group ${name}`);
      only = new Set(names as Group[]);
    } else if (key === 'out') {
      out = value;
    } else if (key in sizes) {
      const v = Number(value);
      if (!Number.isInteger(v) || v < 0) throw new Error(`--${key} needs a non-negative integer`);
      sizes[key as keyof Sizes] = v;
    } else {
      throw new Error(`unknown option --${key}; sizes: ${Object.keys(FULL).join(', ')}`);
    }
  }
  return { sizes, only, out, quick };
}

function unavailable(figures: string[], reason: string): GroupResult {
  return {
    rows: figures.map((figure) => ({ figure, value: null, unit: '', note: `not available: ${reason}` })),
    numbers: {}, commands: [],
  };
}

/** The commit measured, and whether the working tree differs from it (a dirty run is not that commit). */
function gitState(): { commit: string | null; dirty: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return { commit, dirty: status.trim() !== '' };
  } catch {
    return { commit: null, dirty: false };
  }
}

const loadavg = () => os.loadavg().map((v) => Math.round(v * 100) / 100);

async function runGroup(group: Group, sizes: Sizes): Promise<GroupResult & { failed: boolean }> {
  const started = Date.now();
  log(`${group}: starting`);
  try {
    switch (group) {
      case 'delete': {
        const why = deleteUnavailable();
        if (why) return { ...unavailable(['delete_http_per_s', 'delete_floor_per_s'], why), failed: false };
        return { failed: false, ...await benchDelete({
          customers: sizes['delete-customers'], embeddedCustomers: sizes['embedded-customers'],
          largeCustomers: sizes['large-customers'], largeActivity: sizes['large-activity'],
          largeTransactions: sizes['large-transactions'], warmup: sizes.warmup,
        }) };
      }
      case 'read': {
        const why = await readUnavailable();
        if (why) return { ...unavailable(['read_http_per_s', 'read_floor_per_s'], why), failed: false };
        return { failed: false, ...await benchRead({ customers: sizes['read-customers'], reads: sizes.reads, warmup: sizes['read-warmup'] }) };
      }
      case 'exports': {
        const why = await exportsUnavailable();
        if (why) return { ...unavailable(['export_rows_per_s', 'export_floor_rows_per_s', 'export_rss_growth_mb', 'redact_backlog_per_s'], why), failed: false };
        return { failed: false, ...await benchExports({ rows: sizes['export-rows'], redactCustomers: sizes['redact-customers'] }) };
      }
      case 'notify': {
        const why = await notifyUnavailable();
        if (why) return { ...unavailable(['notify_enqueue_1m_s', 'notify_floor_1m_s', 'dispatch_per_s', 'dispatch_peer_per_s'], why), failed: false };
        return { failed: false, ...await benchNotify({ cases: sizes['notify-cases'], dispatchRows: sizes['dispatch-rows'] }) };
      }
      case 'encryption':
        return { failed: false, ...await benchEncryption({
          deletes: sizes['crypto-deletes'], reads: sizes['crypto-reads'],
          exportRows: sizes['crypto-export-rows'], pglite: sizes['crypto-pglite'] > 0,
        }) };
    }
  } catch (error) {
    log(`${group}: FAILED: ${(error as Error).stack ?? error}`);
    return { ...unavailable([`${group} group`], `FAILED: ${(error as Error).message.split('\n')[0]!.slice(0, 160)}`), failed: true };
  } finally {
    log(`${group}: done in ${Math.round((Date.now() - started) / 1000)} s`);
  }
}

function fmt(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '-';
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function printTable(rows: Row[]): void {
  const table = rows.map((r) => [
    r.figure,
    r.value === null ? '-' : `${fmt(r.value)} ${r.unit}`.trim(),
    r.peer ? `${r.peer.figure} ${fmt(r.peer.value)}` : '',
    r.ratio ? (r.ratio.goal === '' ? fmt(r.ratio.value) : `${fmt(r.ratio.value)} (goal ${r.ratio.goal}: ${r.ratio.met === null ? '?' : r.ratio.met ? 'met' : 'NOT met'})`) : '',
    r.note ?? '',
  ]);
  const header = ['figure', 'value', 'peer / floor', 'ratio', 'note'];
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const t of table) console.log(line(t));
}

async function main() {
  const { sizes, only, out, quick } = parseArgs(process.argv.slice(2));
  // PostgreSQL must answer before anything else.
  const c = await pgClient(PG_ADMIN_URL).catch((e: Error) => {
    console.error(`bench: PostgreSQL at ${PG_ADMIN_URL} does not answer (${e.message}); set LETHE_BENCH_PG_URL`);
    process.exit(2);
  });
  const pgVersion = String((await c.query('SHOW server_version')).rows[0].server_version);
  await c.end();

  const started = new Date();
  const git = gitState();
  const loadBefore = loadavg();
  const rows: Row[] = [];
  const numbers: Record<string, number> = {};
  const commands: string[] = [];
  const failed: Group[] = [];
  const ran: Group[] = [];
  for (const group of GROUPS) {
    if (!only.has(group)) continue;
    ran.push(group);
    const r = await runGroup(group, sizes);
    if (r.failed) failed.push(group);
    rows.push(...r.rows);
    Object.assign(numbers, r.numbers);
    commands.push(...r.commands);
  }
  const cores = os.cpus().length;
  const loadAfter = loadavg();
  const seconds = Math.round((Date.now() - started.getTime()) / 1000);
  // Where the figures come from first, then the figures (numbers).
  const results = {
    commit: git.commit, ...(git.dirty ? { dirty: true } : {}),
    at: started.toISOString(), seconds, quick, groups: ran, failedGroups: failed,
    sizes: Object.fromEntries(ran.map((g) => [g, Object.fromEntries(GROUP_SIZES[g].map((k) => [k, sizes[k]]))])), cores, cpu: os.cpus()[0]?.model ?? null, node: process.version, postgres: pgVersion,
    loadavg: { before: loadBefore, after: loadAfter },
    ...numbers,
  };
  fs.writeFileSync(path.resolve(out), JSON.stringify(results, null, 2) + '\n');

  const argv = process.argv.slice(2).join(' ');
  console.log(`\nLethe benchmark — ${started.toISOString()}, ${cores} cores (${os.cpus()[0]?.model ?? 'cpu'}), `
    + `Node ${process.version}, PostgreSQL ${pgVersion}${quick ? ', QUICK sizes (smoke run, not comparable)' : ''}\n`);
  printTable(rows);
  console.log(`\nwritten: ${path.resolve(out)}`);
  console.log('\nreproduce:');
  console.log(`  npm run bench${argv ? ` -- ${argv}` : ''}`);
  for (const cmd of commands) console.log(`  ${cmd}`);
  console.log(`  sizes: ${Object.entries(sizes).map(([k, v]) => `--${k}=${v}`).join(' ')}`);
  // A line for the "Runs" section of docs/benchmarks.md.
  const figures = rows.filter((r) => r.value !== null).map((r) => `\`${r.figure}\` ${fmt(r.value)}${r.ratio?.value != null ? ` (${fmt(r.ratio.value)}×)` : ''}`);
  console.log('\nfor docs/benchmarks.md "Runs":');
  console.log(`| ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC | \`${git.commit?.slice(0, 10) ?? '?'}\`${git.dirty ? ' (dirty)' : ''} | `
    + `${quick ? 'quick' : 'full'} ${ran.join(',')} | ${cores} | ${loadBefore.join(' / ')} → ${loadAfter.join(' / ')} | `
    + `${figures.join(', ')}${failed.length ? ` — FAILED: ${failed.join(', ')}` : ''} |`);
  if (failed.length > 0) {
    console.error(`\nbench: group(s) failed: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

main().catch((error: Error) => {
  console.error(`bench: ${error.stack ?? error.message}`);
  process.exit(1);
});
