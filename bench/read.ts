// read_http_per_s against read_floor_per_s: GET /v1/customers/{id} through the real server on
// PostgreSQL, against a minimal Fastify server (bench/read-floor.ts) sending the same statements.
//
// 1. Customers are created through the API (POST /v1/customers, every field), so each GET opens
//    sealed values under the customer's own key.
// 2. The statements of one GET are recorded from PostgreSQL's own log: `log_statement = 'all'`
//    for the bench database only (ALTER DATABASE … SET, new sessions), a server started after
//    it, one warm GET, then GETs of two customers between marker statements; the log (read with
//    pg_read_file) gives each statement with its parameters. A parameter equal to the customer's
//    id, the key's HMAC or its legacy hash becomes a role, any other stays a constant; both GETs
//    must give the same recording, else the group fails. The setting is reset before the
//    measured server starts.
// 3. A fresh server is measured, then the floor (its own process, like the server): each after a
//    warm-up, 16 concurrent keep-alive connections, the customers read round robin.
// 4. Both must answer the same JSON for a sample of customers (deep equality), else the group fails.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import pg from 'pg';
import { hashKey, legacyHashKey } from '../src/auth/api-keys.ts';
import { deriveSecrets } from '../src/secrets.ts';
import {
  ADMIN_KEY, CONCURRENCY, createDatabase, freePort, log, MASTER_KEY, migrateDatabase, PG_ADMIN_URL, pgClient, readCpuMs,
  percentile, request, round, ROOT, runLoad, startServer, type GroupResult, type Row, type Server,
} from './lib.ts';
import { kindOf, type FloorConfig, type ParamRole, type RecordedStatement } from './read-floor.ts';

export interface ReadOptions {
  /** Customers created through the API. */
  customers: number;
  /** Measured GETs, for the server and for the floor each. */
  reads: number;
  /** Warm-up GETs before each. */
  warmup: number;
}

const customerBody = (t: string) => ({
  salutation: 'Dr.', firstName: `Ada${t}`, lastName: `Lovelace${t}`, displayName: `Ada L ${t}`,
  email: `ada.${t}@example.com`, organization: `Analytical ${t}`, tin: `DE${t}`,
  lastLoginSuccessIp: '203.0.113.7', lastLoginFailureIp: '198.51.100.23', sdkRegisterIp: '2001:db8::1',
  metadata: { favouriteColour: `blue-${t}`, tier: 'gold' },
});

/** The PostgreSQL server's log file, readable through pg_read_file (superuser), or why not. */
async function logFile(c: pg.Client): Promise<string | Error> {
  const current = (await c.query(`SELECT pg_current_logfile() AS f, current_setting('data_directory') AS d,
    current_setting('server_version_num')::int / 10000 AS major`)).rows[0] as { f: string | null; d: string; major: number };
  const candidates = [
    ...(process.env.LETHE_BENCH_PG_LOG ? [process.env.LETHE_BENCH_PG_LOG] : []),
    ...(current.f ? [path.isAbsolute(current.f) ? current.f : path.join(current.d, current.f)] : []),
    `/var/log/postgresql/postgresql-${current.major}-main.log`,
  ];
  for (const f of candidates) {
    const ok = await c.query(`SELECT (pg_stat_file($1)).size AS s`, [f]).then(() => true, () => false);
    if (ok) return f;
  }
  return new Error(`no readable PostgreSQL log among ${candidates.join(', ')} (set LETHE_BENCH_PG_LOG)`);
}

export async function readUnavailable(): Promise<string | null> {
  const c = await pgClient(PG_ADMIN_URL);
  try {
    const f = await logFile(c);
    return f instanceof Error ? f.message : null;
  } finally { await c.end(); }
}

interface LogEntry { pid: string; db: string; level: string; message: string }

function parseLog(text: string): LogEntry[] {
  const out: LogEntry[] = [];
  const head = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[(\d+)\] (?:(\S*)@(\S*) )?([A-Z]+):  (.*)$/;
  for (const line of text.split('\n')) {
    const m = head.exec(line);
    if (m) out.push({ pid: m[1]!, db: m[3] ?? '', level: m[4]!, message: m[5]! });
    else if (out.length > 0 && line.length > 0) out.at(-1)!.message += `\n${line}`;
  }
  return out;
}

function parseParams(detail: string): Array<string | null> {
  const out: Array<string | null> = [];
  for (const m of detail.matchAll(/\$(\d+) = (NULL|'((?:[^']|'')*)')/g)) {
    out[Number(m[1]) - 1] = m[2] === 'NULL' ? null : m[3]!.replaceAll("''", "'");
  }
  return out;
}

/** Statements logged for `db`, by any session but `excludePid`, between two markers. */
function statementsBetween(entries: LogEntry[], db: string, excludePid: string, from: string, to: string) {
  const start = entries.findIndex((e) => e.message.includes(from));
  const end = entries.findIndex((e) => e.message.includes(to));
  if (start < 0 || end < 0) throw new Error(`read: markers ${from}/${to} not found in the PostgreSQL log`);
  const out: Array<{ text: string; params: Array<string | null> }> = [];
  for (let i = start + 1; i < end; i++) {
    const e = entries[i]!;
    if (e.db !== db || e.pid === excludePid || e.level !== 'LOG') continue;
    const m = /^(?:execute [^:]*|statement): ([\s\S]*)$/.exec(e.message);
    if (!m) continue;
    const next = entries[i + 1];
    const params = next && next.pid === e.pid && next.level === 'DETAIL' && next.message.startsWith('parameters:') ? parseParams(next.message) : [];
    out.push({ text: m[1]!.trim(), params });
  }
  return out;
}

function toRecording(logged: Array<{ text: string; params: Array<string | null> }>, customerId: string): RecordedStatement[] {
  const secrets = deriveSecrets(Buffer.from(MASTER_KEY, 'base64'));
  const keyed = hashKey(ADMIN_KEY, secrets.apiKeyHashKey);
  const legacy = legacyHashKey(ADMIN_KEY);
  return logged.map((s) => ({
    text: s.text,
    params: s.params.map((v): ParamRole => (v === customerId ? { role: 'customer' } : v === keyed ? { role: 'keyHash' }
      : v === legacy ? { role: 'legacyKeyHash' } : { role: 'const', value: v })),
  }));
}

/** Records the statements the server sends for one GET /v1/customers/{id} (see the top of the file). */
async function recordGet(dbName: string, dbUrl: string, dataDir: string, ids: string[]): Promise<RecordedStatement[]> {
  const admin = await pgClient(PG_ADMIN_URL);
  const file = await logFile(admin);
  if (file instanceof Error) throw file;
  let server: Server | undefined;
  let marker: pg.Client | undefined;
  try {
    await admin.query(`ALTER DATABASE ${dbName} SET log_statement = 'all'`);
    const offset = Number((await admin.query(`SELECT (pg_stat_file($1)).size AS s`, [file])).rows[0].s);
    server = await startServer({ databaseUrl: dbUrl, dataDir });
    const srv = server;
    marker = await pgClient(dbUrl);
    const pid = String((await marker.query('SELECT pg_backend_pid() AS p')).rows[0].p);
    const tag = `lethe_bench_read_mark_${process.pid}_${Date.now()}`;
    const get = async (id: string) => {
      const r = await request(srv.baseUrl, 'GET', `/v1/customers/${id}`);
      if (r.status !== 200) throw new Error(`read: GET while recording: ${r.status} ${r.body.toString().slice(0, 300)}`);
    };
    await get(ids[2]!); // the key's memo and the pool's first connection, outside the recording
    await marker.query(`SELECT '${tag}_1'`);
    await get(ids[0]!);
    await marker.query(`SELECT '${tag}_2'`);
    await get(ids[1]!);
    await marker.query(`SELECT '${tag}_3'`);
    const size = Number((await admin.query(`SELECT (pg_stat_file($1)).size AS s`, [file])).rows[0].s);
    const text = String((await admin.query(`SELECT pg_read_file($1, $2, $3) AS t`, [file, offset, size - offset])).rows[0].t);
    const entries = parseLog(text);
    const a = toRecording(statementsBetween(entries, dbName, pid, `${tag}_1`, `${tag}_2`), ids[0]!);
    const b = toRecording(statementsBetween(entries, dbName, pid, `${tag}_2`, `${tag}_3`), ids[1]!);
    if (a.length === 0) throw new Error('read: no statement of the GET found in the PostgreSQL log');
    if (!isDeepStrictEqual(a, b)) {
      throw new Error(`read: two GETs sent different statements:\n${JSON.stringify(a, null, 1)}\n${JSON.stringify(b, null, 1)}`);
    }
    for (const s of a) kindOf(s.text); // a statement the floor does not know fails here, not in the child
    return a;
  } finally {
    await admin.query(`ALTER DATABASE ${dbName} RESET log_statement`).catch(() => {});
    await admin.end();
    await marker?.end();
    await server?.stop();
  }
}

interface Floor { baseUrl: string; pid: number; stop(): Promise<void> }

async function startFloor(config: Omit<FloorConfig, 'port'>): Promise<Floor> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-read-floor-'));
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify({ ...config, port }));
  const nodeArgs = (process.env.LETHE_BENCH_FLOOR_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, 'bench/read-floor.ts', file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read floor not ready in 60 s: ${stderr}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('ready')) { clearTimeout(timer); resolve(); } });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`read floor exited with ${code}: ${stderr}`)); });
  });
  return {
    baseUrl: `http://127.0.0.1:${port}`, pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null) {
        const done = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        await done;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function benchRead(o: ReadOptions): Promise<GroupResult> {
  const rows: Row[] = [];
  const numbers: Record<string, number> = {};
  const db = await createDatabase('read');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-bench-read-'));
  let server: Server | undefined;
  let floor: Floor | undefined;
  try {
    await migrateDatabase({ databaseUrl: db.url });
    // 1. Customers through the API.
    server = await startServer({ databaseUrl: db.url, dataDir });
    const srv = server;
    const ids: string[] = [];
    const created = await runLoad(Array.from({ length: Math.max(3, o.customers) }, (_, i) => i), async (i) => {
      const r = await request(srv.baseUrl, 'POST', '/v1/customers', customerBody(`r${i}`));
      if (r.status === 201) ids.push((JSON.parse(r.body.toString()) as { id: string }).id);
      return r;
    }, 201);
    if (created.errors > 0) throw new Error(`read: POST /v1/customers: ${created.errors} errors, first: ${created.firstError}`);
    await server.stop();
    server = undefined;
    const c = await pgClient(db.url);
    try { await c.query('VACUUM ANALYZE'); } finally { await c.end(); }
    log(`read: ${ids.length} customers created through the API`);

    // 2. The statements of one GET.
    const statements = await recordGet(db.name, db.url, dataDir, ids);
    log(`read: one GET sends ${statements.length} statements:\n  ${statements.map((s) => s.text).join('\n  ')}`);

    // 3. Measured in two halves, server–floor–floor–server (ABBA), each contestant warmed up
    //    first: load from other work on the machine that rises or falls during the run weighs on
    //    both alike. Both processes stay up throughout; the idle one only waits.
    const warm = Array.from({ length: o.warmup }, (_, i) => ids[(i * 7) % ids.length]!);
    const half = Math.floor(o.reads / 2);
    const reads = [0, 1].map((h) => Array.from({ length: h === 0 ? half : o.reads - half }, (_, i) => ids[(h * half + i) % ids.length]!));
    server = await startServer({ databaseUrl: db.url, dataDir });
    const s2 = server;
    floor = await startFloor({ databaseUrl: db.url, keyringDir: `${dataDir}-keyring`, masterKey: MASTER_KEY, statements });
    const f = floor;
    const get = (id: string) => request(s2.baseUrl, 'GET', `/v1/customers/${id}`);
    const fget = (id: string) => request(f.baseUrl, 'GET', `/customers/${id}`);
    await runLoad(warm, get, 200);
    await runLoad(warm, fget, 200);
    const measure = async (send: typeof get, pid: number, items: string[], what: string) => {
      const cpu0 = readCpuMs(pid);
      const r = await runLoad(items, send, 200);
      if (r.errors > 0) throw new Error(`read: ${what}: ${r.errors} errors, first: ${r.firstError}`);
      return { ...r, cpuMs: readCpuMs(pid) - cpu0 };
    };
    const h1 = await measure(get, s2.pid, reads[0]!, 'GET over HTTP');
    const f1 = await measure(fget, f.pid, reads[0]!, 'floor GET');
    const f2 = await measure(fget, f.pid, reads[1]!, 'floor GET');
    const h2 = await measure(get, s2.pid, reads[1]!, 'GET over HTTP');
    const combine = (a: typeof h1, b: typeof h1) => {
      const lat = [...a.latencies, ...b.latencies].sort((x, y) => x - y);
      return { perS: (a.count + b.count) / ((a.ms + b.ms) / 1000), p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), halves: [a.perS, b.perS] };
    };
    const http = combine(h1, h2);
    const fl = combine(f1, f2);
    const serverCpu = (h1.cpuMs + h2.cpuMs) / o.reads;
    const floorCpu = (f1.cpuMs + f2.cpuMs) / o.reads;
    log(`read: HTTP ${round(http.perS)}/s (halves ${http.halves.map((v) => round(v)).join(', ')}) p50 ${round(http.p50Ms, 2)} ms p99 ${round(http.p99Ms, 2)} ms`);
    log(`read: floor ${round(fl.perS)}/s (halves ${fl.halves.map((v) => round(v)).join(', ')}) p50 ${round(fl.p50Ms, 2)} ms p99 ${round(fl.p99Ms, 2)} ms`);

    // 4. The same answers.
    const sample = ids.filter((_, i) => i % Math.max(1, Math.floor(ids.length / 20)) === 0);
    for (const id of sample) {
      const [a, b] = await Promise.all([get(id), fget(id)]);
      const ja = JSON.parse(a.body.toString()) as Record<string, unknown>;
      const jb = JSON.parse(b.body.toString()) as Record<string, unknown>;
      if (!isDeepStrictEqual(ja, jb)) throw new Error(`read: the floor answers differently for ${id}:\n${a.body}\n${b.body}`);
      if (typeof ja.email !== 'string' || !ja.email.startsWith('ada.')) throw new Error(`read: the server's answer is not decrypted: ${a.body}`);
    }

    numbers.read_http_per_s = round(http.perS);
    numbers.read_http_p50_ms = round(http.p50Ms, 2);
    numbers.read_http_p99_ms = round(http.p99Ms, 2);
    numbers.read_floor_per_s = round(fl.perS);
    numbers.read_floor_p50_ms = round(fl.p50Ms, 2);
    numbers.read_floor_p99_ms = round(fl.p99Ms, 2);
    const ratio = http.perS / fl.perS;
    numbers.read_floor_ratio = round(ratio, 2);
    rows.push({
      figure: 'read_http_per_s', value: numbers.read_http_per_s, unit: '/s',
      peer: { figure: 'read_floor_per_s', value: numbers.read_floor_per_s },
      ratio: { value: round(ratio, 2), goal: '>= 0.8', met: ratio >= 0.8 },
      note: `${o.reads} GETs of ${ids.length} customers, ${CONCURRENCY} concurrent, p50 ${round(http.p50Ms, 2)} ms, p99 ${round(http.p99Ms, 2)} ms, `
        + `server CPU ${round(serverCpu, 2)} ms per GET, halves ${http.halves.map((v) => round(v)).join(' / ')} /s (ABBA); same JSON for ${sample.length} customers`,
    });
    rows.push({
      figure: 'read_floor_per_s', value: numbers.read_floor_per_s, unit: '/s',
      note: `bench/read-floor.ts, ${statements.length} recorded statements, halves ${fl.halves.map((v) => round(v)).join(' / ')} /s, p50 ${round(fl.p50Ms, 2)} ms, p99 ${round(fl.p99Ms, 2)} ms, CPU ${round(floorCpu, 2)} ms per GET`,
    });
    return {
      rows, numbers,
      commands: ['node bench/read-floor.ts <config.json>   # the floor server; bench/read.ts records its statements and writes the config'],
    };
  } finally {
    await floor?.stop();
    await server?.stop();
    await db.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(`${dataDir}-keyring`, { recursive: true, force: true });
  }
}
