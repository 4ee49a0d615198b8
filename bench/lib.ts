// Shared machinery of `npm run bench`: fresh databases, the real server as a child process,
// an HTTP load driver (16 keep-alive connections), pgbench, and peak-RSS sampling.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const PG_ADMIN_URL = process.env.LETHE_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const CONCURRENCY = 16;
export const ADMIN_KEY = `lethe_op_bench_${crypto.randomBytes(12).toString('hex')}`;
/** One master key per run: the bench computes the same pseudonyms as the server. */
export const MASTER_KEY = crypto.randomBytes(32).toString('base64');

/** A figure of the result table. */
export interface Row {
  figure: string;
  value: number | null;
  unit: string;
  /** The floor or peer the figure is compared with, when there is one. */
  peer?: { figure: string; value: number | null };
  /** value / peer (or peer / value for latencies, so > 1 is always "better than"): with the goal. */
  ratio?: { value: number | null; goal: string; met: boolean | null };
  note?: string;
}

export interface GroupResult {
  rows: Row[];
  /** Figures written into bench-results.json. */
  numbers: Record<string, number>;
  /** Commands that reproduce the group's numbers by hand. */
  commands: string[];
}

export const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

// ---------------------------------------------------------------------------------------------
// Databases

export interface BenchDb { name: string; url: string; drop(): Promise<void> }

/** A new database (empty, or a copy of `template`) named after `tag`; `drop()` removes it. */
async function newDatabase(tag: string, template?: string): Promise<BenchDb> {
  const name = `lethe_bench_${tag}_${crypto.randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try { await admin.query(`CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}`); } finally { await admin.end(); }
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name, url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      try { await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`); } finally { await c.end(); }
    },
  };
}

/** A fresh PostgreSQL database for one bench; `drop()` removes it. */
export function createDatabase(tag: string): Promise<BenchDb> {
  return newDatabase(tag);
}

/**
 * A copy of `source` (CREATE DATABASE … TEMPLATE: the same pages, statistics and visibility map),
 * so two runs can start from one state. Nothing may be connected to `source` meanwhile.
 */
export function cloneDatabase(source: BenchDb, tag: string): Promise<BenchDb> {
  return newDatabase(tag, source.name);
}

/** CHECKPOINT, so a timed run does not pay for the WAL of the setup before it. */
export async function checkpoint(): Promise<void> {
  const c = await pgClient(PG_ADMIN_URL);
  try { await c.query('CHECKPOINT'); } finally { await c.end(); }
}

export async function pgClient(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

/** Applies Lethe's migrations to a database (PostgreSQL URL, or a PGlite data directory). */
export async function migrateDatabase(target: { databaseUrl: string } | { dataDir: string }) {
  const { openDatabase, migrate } = await import('../src/db/database.ts');
  const { MIGRATIONS } = await import('../src/domains.ts');
  const handle = await openDatabase(target);
  try { await migrate(handle.db, MIGRATIONS); } finally { await handle.close(); }
}

// ---------------------------------------------------------------------------------------------
// The server

export interface Server {
  port: number;
  pid: number;
  baseUrl: string;
  child: ChildProcess;
  /** Peak resident set size so far (VmHWM), in MiB. */
  peakRssMb(): number;
  /** CPU time (user + system) the server process used so far, in ms. */
  cpuMs(): number;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/**
 * CPU time (ms) of the PostgreSQL backends connected to `database` now (same machine): the
 * database's share of a run, apart from other databases' work on the same server.
 */
export async function backendCpuMs(exec: (text: string) => Promise<{ rows: any[] }>, database: string): Promise<number> {
  return (await backendSnapshot(exec, database)).reduce((sum, b) => sum + b.cpuMs, 0);
}

/** The backends connected to `database` now (same machine): pid, start time and CPU so far. */
export interface BackendSnapshot { pid: number; start: string; cpuMs: number }
export async function backendSnapshot(exec: (text: string) => Promise<{ rows: any[] }>, database: string): Promise<BackendSnapshot[]> {
  const { rows } = await exec(`SELECT pid FROM pg_stat_activity WHERE datname = '${database.replaceAll("'", "''")}' AND pid <> pg_backend_pid()`);
  return rows.flatMap((r: { pid: number }) => {
    const fields = procStat(Number(r.pid));
    return fields ? [{ pid: Number(r.pid), start: fields[22 - 3]!, cpuMs: fieldsMs(fields, 14, 15) }] : [];
  });
}

/**
 * The CPU (as of the snapshot) of the snapshot's backends that have exited since (gone, or the
 * pid now another process): what the postmaster's reaped CPU gained from them, not from the run.
 */
export function exitedSinceMs(snapshot: BackendSnapshot[]): number {
  return snapshot.reduce((sum, b) => (procStat(b.pid)?.[22 - 3] === b.start ? sum : sum + b.cpuMs), 0);
}

/**
 * The fields of /proc/<pid>/stat after "pid (comm) " (field N of the line at index N - 3), or
 * null when the process is gone or not on this machine.
 */
function procStat(pid: number): string[] | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Milliseconds of CPU in two clock-tick fields of a /proc/<pid>/stat line (by line position). */
const fieldsMs = (fields: string[], first: number, second: number): number =>
  ((Number(fields[first - 3]) + Number(fields[second - 3])) / CLK_TCK) * 1000;

/** fieldsMs of a process's current /proc/<pid>/stat, NaN if unreadable. */
function ticksMs(pid: number, first: number, second: number): number {
  const fields = procStat(pid);
  return fields ? fieldsMs(fields, first, second) : NaN;
}

/** CPU time (ms) of a process: utime + stime (fields 14 and 15). */
export const readCpuMs = (pid: number): number => ticksMs(pid, 14, 15);

/**
 * CPU time (ms) of the children `pid` has reaped (cutime + cstime, fields 16 and 17): for the
 * bench process, the tools it ran to completion (pgbench); for PostgreSQL's postmaster, the
 * backends that have exited (pgbench's 16, at its end).
 */
export const readReapedCpuMs = (pid: number): number => ticksMs(pid, 16, 17);

/** The postmaster's pid (the parent of this connection's backend, field 4), when PostgreSQL runs on this machine. */
export async function postmasterPid(exec: (text: string) => Promise<{ rows: any[] }>): Promise<number | null> {
  const backend = Number((await exec('SELECT pg_backend_pid() AS pid')).rows[0].pid);
  const fields = procStat(backend);
  return fields ? Number(fields[1]) : null;
}

export function readVmHwmMb(pid: number): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Current resident set size (VmRSS), in MiB. */
export function readVmRssMb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Resets the process's VmHWM to its current RSS (Linux: "5" into clear_refs); false when not allowed. */
export function resetPeakRss(pid: number): boolean {
  try { fs.writeFileSync(`/proc/${pid}/clear_refs`, '5'); return true; } catch { return false; }
}

/**
 * The node flags `npm start` runs the server with (package.json's start script: the heap sizing
 * chosen for the export's memory, README "Heap flags"): the bench's server runs as deployed.
 */
export const START_NODE_ARGS: readonly string[] = (() => {
  const start = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  const m = /^node\s+(.*?)\s*src\/main\.ts$/.exec(start);
  if (!m) throw new Error(`package.json start script is not "node [flags] src/main.ts": ${start}`);
  return m[1]!.split(/\s+/).filter(Boolean);
})();

/**
 * Starts `node src/main.ts` (the real server: `npm start`) as a child process on a free port and
 * waits for /readyz. Logs go to /dev/null at the default level (appended to a file with
 * LETHE_BENCH_SERVER_LOG=<path>, to read a failing group's errors); the scheduler and dispatcher
 * are off unless asked for, so nothing but the measured work runs.
 */
export async function startServer(options: {
  databaseUrl?: string; dataDir?: string; env?: Record<string, string>;
  /** Options of node itself (V8 flags not allowed in NODE_OPTIONS), before src/main.ts, after npm start's (a later V8 flag wins). */
  nodeArgs?: string[];
}): Promise<Server> {
  const port = await freePort();
  const dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-bench-'));
  const env: Record<string, string> = {
    ...process.env as Record<string, string>,
    PORT: String(port), HOST: '127.0.0.1',
    LETHE_DATA_DIR: dataDir,
    LETHE_ADMIN_KEY: ADMIN_KEY,
    LETHE_MASTER_KEY: MASTER_KEY,
    LETHE_SCHEDULER: 'false',
    LETHE_DISPATCHER: 'false',
    // The per-key limit (default 60,000/min) would cap a single-key load test, not measure it.
    LETHE_RATE_LIMIT_PER_MINUTE: '10000000',
    LETHE_WEBHOOK_ALLOW_PRIVATE: 'true',
    LOG_LEVEL: 'info',
    ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {}),
    ...options.env,
  };
  if (!options.databaseUrl) delete env.DATABASE_URL;
  // Profiling aid: LETHE_BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" (Node refuses --cpu-prof in NODE_OPTIONS).
  const nodeArgs = [...START_NODE_ARGS, ...(process.env.LETHE_BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean), ...options.nodeArgs ?? []];
  const logFd = process.env.LETHE_BENCH_SERVER_LOG ? fs.openSync(process.env.LETHE_BENCH_SERVER_LOG, 'a') : null;
  const child = spawn(process.execPath, [...nodeArgs, 'src/main.ts'], { cwd: ROOT, env, stdio: ['ignore', logFd ?? 'ignore', 'pipe'] });
  if (logFd !== null) fs.closeSync(logFd); // the child has its own copy
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  let exited: number | null = null;
  child.once('exit', (code) => { exited = code ?? -1; });
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (exited !== null) throw new Error(`server exited with ${exited} before ready: ${stderr}`);
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`server not ready in 120 s: ${stderr}`); }
    const ok = await fetch(`${baseUrl}/readyz`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    port, pid: child.pid!, baseUrl, child,
    peakRssMb: () => readVmHwmMb(child.pid!),
    cpuMs: () => readCpuMs(child.pid!),
    stop: async () => {
      if (exited !== null) return;
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await done;
      clearTimeout(timer);
      if (!options.dataDir) {
        fs.rmSync(dataDir, { recursive: true, force: true });
        fs.rmSync(`${dataDir}-keyring`, { recursive: true, force: true }); // the key store beside it (src/crypto/keyring.ts)
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP

const agents = new Map<string, http.Agent>();
function agentFor(baseUrl: string): http.Agent {
  let a = agents.get(baseUrl);
  if (!a) { a = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY }); agents.set(baseUrl, a); }
  return a;
}

export interface HttpResult { status: number; body: Buffer }

/** One request over the shared keep-alive agent (16 sockets per server). */
export function request(baseUrl: string, method: string, urlPath: string, body?: unknown, key = ADMIN_KEY): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(`${baseUrl}${urlPath}`, {
      method, agent: agentFor(baseUrl),
      headers: {
        authorization: `Bearer ${key}`,
        ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
      },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

export interface LoadResult { count: number; ms: number; perS: number; p50Ms: number; p99Ms: number; errors: number; firstError?: string; latencies: number[] }

/**
 * Runs one request per item with `CONCURRENCY` requests in flight, over keep-alive connections.
 * Latency is measured per request on the client (what a caller sees).
 */
export async function runLoad<T>(items: T[], send: (item: T) => Promise<HttpResult>, expect: number): Promise<LoadResult> {
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  async function worker() {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      const s = performance.now();
      try {
        const r = await send(items[i]!);
        latencies.push(performance.now() - s);
        if (r.status !== expect) { errors++; firstError ??= `${r.status} ${r.body.toString().slice(0, 300)}`; }
      } catch (error) {
        errors++; firstError ??= (error as Error).message;
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const ms = performance.now() - t0;
  latencies.sort((a, b) => a - b);
  return {
    count: items.length, ms, perS: items.length / (ms / 1000),
    p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), errors, latencies,
    ...(firstError ? { firstError } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// pgbench

export interface PgbenchResult { tps: number; p99Ms: number; p50Ms: number; count: number; failed: number; command: string }

/**
 * Runs a pgbench script (-M prepared, -c 16 -j 2, a fixed number of transactions per client)
 * and reads per-transaction latencies from its log files.
 */
export function runPgbench(dbUrl: string, script: string, options: {
  transactionsPerClient: number; defines?: Record<string, string>; clients?: number;
}): PgbenchResult {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-pgbench-'));
  const scriptFile = path.join(dir, 'script.sql');
  fs.writeFileSync(scriptFile, script);
  const args = [
    '-n', '-M', 'prepared', '-c', String(options.clients ?? CONCURRENCY), '-j', String(Math.min(2, options.clients ?? CONCURRENCY)),
    '-t', String(options.transactionsPerClient),
    '-f', scriptFile, '-l', '--log-prefix', path.join(dir, 'log'),
    ...Object.entries(options.defines ?? {}).flatMap(([k, v]) => ['-D', `${k}=${v}`]),
    dbUrl,
  ];
  const r = spawnSync('pgbench', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const out = `${r.stdout}\n${r.stderr}`;
  if (r.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`pgbench failed (${r.status}): ${out.slice(-3000)}`);
  }
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(out)?.[1] ?? NaN);
  const failed = Number(/number of failed transactions: (\d+)/.exec(out)?.[1] ?? 0);
  const latencies: number[] = [];
  for (const f of fs.readdirSync(dir).filter((n) => n.startsWith('log'))) {
    for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      const parts = line.split(' ');
      if (parts.length >= 3) latencies.push(Number(parts[2]) / 1000);
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  return {
    tps, failed, count: latencies.length,
    p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99),
    command: `pgbench ${args.map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ').replaceAll(dir, '$DIR')}`,
  };
}

export function pgbenchAvailable(): string | null {
  const r = spawnSync('pgbench', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? null : 'pgbench not found (apt-get install postgresql-client)';
}
