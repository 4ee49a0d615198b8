// `node bench/cpu-attribution.ts [deletes]`: where the machine's CPU goes during DELETE
// /v1/customers/{id} over HTTP (the `delete_http_per_s` load: standard customers, 16 in flight,
// the real server as `npm start` runs it), by process and, inside the server, by whose code runs.
//
// It samples every CPU with `perf record -e cpu-clock -a -g` (a software clock: no hardware
// counters needed, so it works in a VM; only threads on a CPU are sampled, so a thread preempted
// in a syscall counts nothing) while the measured DELETEs run. The server runs with
// --perf-basic-prof --interpreted-frames-native-stack, so JavaScript frames carry their function
// and file. A server sample is attributed to the first JavaScript frame from the leaf: V8 builtins
// and native code called from a function count for that function (JSON.stringify in Lethe's code is
// Lethe's; a socket write under node:net is Node's). Needs Linux `perf` (Debian: linux-perf) and
// permission to sample every CPU (root, or kernel.perf_event_paranoid <= 0). Not part of
// `npm run bench` (it needs that permission); docs/benchmarks.md shows its output.
//   node bench/cpu-attribution.ts [deletes=1600] [warm-up=320]
// Totals by category are reliable (the server's sampled total matches its /proc CPU); single
// functions less so: V8 frees and reuses code addresses, and --perf-basic-prof's map keeps the
// old names, so a few samples carry the name of code that once lived at the same address.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { standardCustomersDatabase } from './fixtures.ts';
import { defaultKeyringDir } from '../src/crypto/keyring.ts';
import { CONCURRENCY, createDatabase, log, readCpuMs, request, ROOT, round, runLoad, startServer } from './lib.ts';

const deletes = Math.ceil(Number(process.argv[2] ?? 1600) / CONCURRENCY) * CONCURRENCY;
const warmup = Math.ceil(Number(process.argv[3] ?? 320) / CONCURRENCY) * CONCURRENCY;

if (spawnSync('perf', ['--version']).status !== 0) {
  console.error('perf is not available (Debian: apt-get install linux-perf)');
  process.exit(1);
}

/** One sample: the process and thread it hit, when (CLOCK_MONOTONIC, ns), and its stack (leaf first) as perf names the frames. */
interface Sample { pid: number; comm: string; ns: bigint; frames: string[] }

function parsePerfScript(text: string): Sample[] {
  const samples: Sample[] = [];
  let cur: Sample | null = null;
  for (const line of text.split('\n')) {
    if (!line.trim()) { if (cur) samples.push(cur); cur = null; continue; }
    if (!/^\s/.test(line)) {
      // "<comm> <pid>/<tid> <seconds>.<microseconds>:" (the comm may contain spaces)
      const m = /^(.*?)\s+(\d+)\/\d+\s+(\d+)\.(\d{6}):\s*$/.exec(line);
      cur = m ? { comm: m[1]!.trim(), pid: Number(m[2]), ns: BigInt(m[3]!) * 1_000_000_000n + BigInt(m[4]!) * 1000n, frames: [] } : null;
      continue;
    }
    const m = /^\s+([0-9a-f]+)\s+(.*)$/.exec(line);
    if (cur && m) cur.frames.push(`${m[1]!.startsWith('ffffffff') ? '[k] ' : ''}${m[2]}`);
  }
  if (cur) samples.push(cur);
  return samples;
}

/** Whose code a server sample is: the first JavaScript frame from the leaf decides. */
function serverCategory(s: Sample): { category: string; fn?: string } {
  if (s.comm !== 'MainThread' && s.comm !== 'node') {
    return { category: /^V8/.test(s.comm) ? 'V8 helper threads (GC marking and sweeping, compilation)' : /libuv/.test(s.comm) ? 'libuv thread pool (file system: backup marker, journal, fsync)' : `thread ${s.comm}` };
  }
  const kernel = s.frames[0]?.startsWith('[k]') ?? false;
  const js = s.frames.find((f) => f.startsWith('JS:'));
  if (!js) {
    const gc = s.frames.slice(0, 16).some((f) => /Scavenger|Heap::|MarkCompact|Sweeper|GCTracer/.test(f));
    return { category: gc ? 'V8 garbage collection (main thread)' : kernel ? 'event loop and I/O in the kernel (no JavaScript on the stack)' : 'event loop, microtask queue, V8 runtime (no JavaScript on the stack)' };
  }
  const where = js.replace(/^JS:\S*\s+/, '');
  const own = where.indexOf(`${ROOT}/src/`);
  if (own >= 0) {
    const file = where.slice(own + ROOT.length + 1).split(':')[0];
    const name = /^JS:[*~+^']*'?(\S*)\s/.exec(js)?.[1] || '(anonymous)';
    return { category: "Lethe's own code (src/)", fn: `${name} ${file}` };
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(where)?.[1];
  if (pkg) {
    if (/^(pg|pg-protocol|pg-pool|pg-types|pg-connection-string|postgres-.*)$/.test(pkg)) return { category: 'node-postgres (pg, pg-protocol, pg-pool)' };
    if (pkg === 'kysely') return { category: 'Kysely' };
    if (/fastify|avvio|find-my-way|light-my-request|fast-json-stringify|ajv|@sinclair|typebox/.test(pkg)) return { category: 'Fastify (routing, hooks, schemas)' };
    if (/pino|sonic-boom/.test(pkg)) return { category: 'pino (the request log line)' };
    return { category: `library ${pkg}` };
  }
  const mod = /node:([a-z_/]+)/.exec(where)?.[1] ?? 'other';
  if (/crypto/.test(mod)) return { category: 'Node: crypto (AES-GCM, HMAC, SHA-256, random)' };
  if (/^(net|internal\/stream_base_commons|internal\/streams|_http|internal\/http)/.test(mod)) {
    return { category: kernel ? 'Node: sockets, in the kernel (TCP writes and reads: PostgreSQL, HTTP)' : 'Node: sockets and HTTP, JavaScript' };
  }
  if (/fs/.test(mod)) return { category: 'Node: file system calls' };
  if (/timers|task_queues|async_hooks|events/.test(mod)) return { category: 'Node: event loop callbacks (timers, ticks, events)' };
  return { category: `Node: other (${mod.replace(/^internal\//, '')})` };
}

/** What a V8 helper thread's sample was doing, from V8's own function names on its stack. */
function helperTask(s: Sample): string {
  const stack = s.frames.join(' ');
  if (/ConcurrentMarking|MarkingVisitor|MarkCompact|IncrementalMarking|MajorMark/.test(stack)) return 'major GC: concurrent marking of the old generation';
  if (/Sweeper|Sweep/.test(stack)) return 'GC: sweeping';
  if (/Scaveng|MinorMark|YoungGeneration/.test(stack)) return 'minor GC (scavenge) in parallel';
  if (/Compil|Maglev|Turbo|turboshaft|Sparkplug|Baseline/.test(stack)) return 'JIT compilation';
  return `other (${(s.frames[0] ?? '?').slice(0, 60)})`;
}

const db = await createDatabase('cpuattr');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-cpuattr-'));
const perfData = path.join(dataDir, 'perf.data');
let serverPid = 0;
try {
  const ids = await standardCustomersDatabase(db.url, dataDir, warmup + deletes);
  const srv = await startServer({ databaseUrl: db.url, dataDir, nodeArgs: ['--perf-basic-prof', '--interpreted-frames-native-stack'] });
  serverPid = srv.pid;
  try {
    const del = (id: string) => request(srv.baseUrl, 'DELETE', `/v1/customers/${id}`);
    await runLoad(ids.slice(0, warmup), del, 204);
    // Timestamps on CLOCK_MONOTONIC (process.hrtime's clock): only the samples inside the measured run count.
    const perf = spawn('perf', ['record', '-e', 'cpu-clock', '-F', '999', '-a', '-g', '-k', 'CLOCK_MONOTONIC', '-o', perfData], { stdio: ['ignore', 'ignore', 'pipe'] });
    let perfErr = '';
    perf.stderr.on('data', (d: Buffer) => { perfErr += d.toString(); });
    await new Promise((r) => setTimeout(r, 500)); // perf attached
    const cpu0 = readCpuMs(srv.pid);
    const from = process.hrtime.bigint();
    const load = await runLoad(ids.slice(warmup), del, 204);
    const to = process.hrtime.bigint();
    const serverCpuMs = (readCpuMs(srv.pid) - cpu0) / deletes;
    const stopped = new Promise<void>((resolve) => perf.once('exit', () => resolve()));
    perf.kill('SIGINT');
    await stopped;
    if (load.errors > 0) throw new Error(`DELETE: ${load.errors} errors, first: ${load.firstError}`);
    log(`cpu-attribution: ${deletes} DELETEs at ${round(load.perS)}/s, server CPU ${round(serverCpuMs, 2)} ms per DELETE (/proc)`);
    const script = spawnSync('perf', ['script', '-i', perfData, '-F', 'comm,pid,tid,time,ip,sym'], { maxBuffer: 1 << 30, encoding: 'utf8' });
    if (script.status !== 0) throw new Error(`perf script failed: ${script.stderr}${perfErr}`);
    const samples = parsePerfScript(script.stdout).filter((x) => x.ns >= from && x.ns <= to);
    if (samples.length === 0) throw new Error('no perf sample inside the measured run (perf script output not understood?)');
    // The window's length in samples: 999 Hz on every CPU (idle CPUs sample the swapper).
    const msPerSample = 1000 / 999;
    const perDelete = (n: number) => (n * msPerSample) / deletes;

    const byProcess = new Map<string, number>();
    const inServer = new Map<string, number>();
    const ownFns = new Map<string, number>();
    const helpers = new Map<string, number>();
    const ownFiles = new Map<string, number>();
    let serverSamples = 0;
    for (const s of samples) {
      const proc = s.pid === srv.pid ? 'Lethe server' : s.pid === process.pid ? 'bench HTTP client' : s.pid === 0 ? 'idle' : s.comm === 'postgres' ? 'PostgreSQL' : `other (${s.comm})`;
      byProcess.set(proc, (byProcess.get(proc) ?? 0) + 1);
      if (s.pid !== srv.pid) continue;
      serverSamples++;
      const { category, fn } = serverCategory(s);
      inServer.set(category, (inServer.get(category) ?? 0) + 1);
      if (fn) {
        ownFns.set(fn, (ownFns.get(fn) ?? 0) + 1);
        const file = fn.split(' ').pop()!;
        ownFiles.set(file, (ownFiles.get(file) ?? 0) + 1);
      }
      if (category.startsWith('V8 helper')) {
        const task = helperTask(s);
        helpers.set(task, (helpers.get(task) ?? 0) + 1);
      }
    }
    const total = samples.length;
    const table = (title: string, rows: Map<string, number>, of: number, limit = 40) => {
      console.log(`\n${title}`);
      console.log(`${'ms per DELETE'.padStart(14)}  ${'share'.padStart(6)}  what`);
      for (const [k, v] of [...rows].sort((a, b) => b[1] - a[1]).slice(0, limit)) {
        console.log(`${perDelete(v).toFixed(3).padStart(14)}  ${(100 * v / of).toFixed(1).padStart(5)}%  ${k}`);
      }
    };
    console.log(`\nLethe CPU attribution — ${new Date().toISOString()}, ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), Node ${process.version}`);
    console.log(`${deletes} DELETEs over HTTP, ${CONCURRENCY} in flight, ${round(load.perS)}/s; ${total} samples at 999 Hz on every CPU`);
    table('Every CPU, by process', byProcess, total);
    table(`Inside the server (${round(perDelete(serverSamples), 2)} ms per DELETE sampled; /proc says ${round(serverCpuMs, 2)})`, inServer, serverSamples);
    table('V8 helper threads, by task', helpers, serverSamples);
    table("Lethe's own code, by file", ownFiles, serverSamples, 20);
    table("Lethe's own code, by function (first src/ frame from the leaf)", ownFns, serverSamples, 25);
    console.log('\nreproduce:\n  node bench/cpu-attribution.ts ' + deletes);
  } finally {
    await srv.stop();
  }
} finally {
  await db.drop();
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.rmSync(defaultKeyringDir(dataDir), { recursive: true, force: true });
  if (serverPid) fs.rmSync(`/tmp/perf-${serverPid}.map`, { force: true });
}
