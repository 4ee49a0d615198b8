// Issue 2 figures: DELETE over HTTP vs the pgbench floor on PostgreSQL, DELETE on the embedded
// database, and one DELETE of a large customer.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { pgcrypto } from '@electric-sql/pglite/contrib/pgcrypto';
import pg from 'pg';
import { defaultKeyringDir } from '../src/crypto/keyring.ts';
import { ensureFeed, giveDataKeys, insertApplications, insertCustomers, insertFeed, withIndexesDeferred, type Exec } from './fixtures.ts';
import { floorScript } from './floor.ts';
import { runScriptEmbedded } from './floor-embedded.ts';
import {
  backendCpuMs, backendSnapshot, CONCURRENCY, createDatabase, log, migrateDatabase, pgbenchAvailable, percentile, postmasterPid, exitedSinceMs, readReapedCpuMs, request, round, runLoad, runPgbench,
  startServer, timed, type GroupResult, type Row,
} from './lib.ts';
import { deletionShape, diffShapes } from './signature.ts';

export interface DeleteOptions {
  /** Customers deleted over HTTP and by the floor, each (rounded up to a multiple of 16). */
  customers: number;
  embeddedCustomers: number;
  largeCustomers: number;
  largeActivity: number;
  largeTransactions: number;
  warmup: number;
}

const pgExec = (c: pg.Client): Exec => async (text) => c.query(text);

export async function benchDelete(o: DeleteOptions): Promise<GroupResult> {
  const rows: Row[] = [];
  const numbers: Record<string, number> = {};
  const commands: string[] = [];
  const n = Math.ceil(o.customers / CONCURRENCY) * CONCURRENCY;
  const warm = Math.ceil(o.warmup / CONCURRENCY) * CONCURRENCY;

  // ---- PostgreSQL: HTTP, floor, large customer, all in one database.
  const db = await createDatabase('delete');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-bench-delete-'));
  const client = new pg.Client({ connectionString: db.url });
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    await migrateDatabase({ databaseUrl: db.url });
    await client.connect();
    const exec = pgExec(client);
    await ensureFeed(exec);
    const apps = await insertApplications(exec);
    // Feed layout: [http warm-up][http][floor warm-up][floor][large]
    const httpLo = 1, httpHi = warm + n;
    const floorLo = httpHi + 1, floorHi = floorLo + warm + n - 1;
    const largeLo = floorHi + 1, largeHi = largeLo + o.largeCustomers - 1;
    const ids = await insertFeed(exec, 1, largeHi);
    const fx = await timed(async () => {
      await withIndexesDeferred(exec, async () => {
        for (let lo = 1; lo <= floorHi; lo += 10_000) await insertCustomers(exec, lo, Math.min(floorHi, lo + 9_999), apps);
        if (o.largeCustomers > 0) {
          await insertCustomers(exec, largeLo, largeHi, apps, { activity: o.largeActivity, transactions: o.largeTransactions });
        }
      });
      await exec('VACUUM ANALYZE');
    });
    log(`delete: ${floorHi} standard + ${o.largeCustomers} large customers inserted in ${round(fx.ms / 1000)} s`);
    // Their data keys, as every customer has (made by the server's code, in the keyring the server then uses).
    await giveDataKeys({ databaseUrl: db.url, dataDir }, ids);

    server = await startServer({ databaseUrl: db.url, dataDir });
    const srv = server;
    const del = (id: string) => request(srv.baseUrl, 'DELETE', `/v1/customers/${id}`);
    const httpIds = ids.slice(httpLo - 1, httpHi);
    await runLoad(httpIds.slice(0, warm), del, 204);
    const cpu0 = srv.cpuMs();
    const pgCpu0 = await backendCpuMs(exec, db.name);
    const client0 = process.cpuUsage();
    const http = await runLoad(httpIds.slice(warm), del, 204);
    const clientCpu = process.cpuUsage(client0);
    const serverCpuMs = (srv.cpuMs() - cpu0) / n;
    // The server's pool stays connected, so its backends' CPU is read again at the end.
    const pgCpuMs = (await backendCpuMs(exec, db.name) - pgCpu0) / n;
    // The load generator (this process's HTTP client): the floor's counterpart is pgbench.
    const clientCpuMs = (clientCpu.user + clientCpu.system) / 1000 / n;
    if (http.errors > 0) throw new Error(`DELETE over HTTP: ${http.errors} errors, first: ${http.firstError}`);
    log(`delete: HTTP ${round(http.perS)}/s p99 ${round(http.p99Ms, 2)} ms`);

    const large: number[] = [];
    for (const id of ids.slice(largeLo - 1, largeHi)) {
      const t = await timed(() => del(id));
      if (t.value.status !== 204) throw new Error(`large DELETE: ${t.value.status} ${t.value.body.toString()}`);
      large.push(t.ms);
    }
    large.sort((a, b) => a - b);

    // The floor, on the same database with the server still up (idle), like a second client.
    const actor = String((await exec(`SELECT id FROM api_keys ORDER BY created_at LIMIT 1`)).rows[0].id);
    await exec(`CREATE SEQUENCE bench_floor_seq START ${floorLo}`);
    // The server seals the pre-deletion archive with AES-256-GCM in Node; the floor seals it in
    // the database with pgcrypto (AES), or stores it unsealed when pgcrypto is missing.
    const pgcrypto = await exec(`CREATE EXTENSION IF NOT EXISTS pgcrypto`).then(() => true, () => false);
    const key = crypto.randomBytes(32).toString('hex');
    const script = floorScript({ seal: (x) => (pgcrypto ? `encrypt(${x}, '\\x${key}'::bytea, 'aes')` : x) });
    if (!pgcrypto) log('delete: pgcrypto is not available: the floor stores its archive unsealed');
    runPgbench(db.url, script, { transactionsPerClient: warm / CONCURRENCY, defines: { actor } });
    // The floor's CPU: pgbench's own (reaped by this process) and its backends' (reaped by the
    // postmaster when pgbench disconnects). The server's own backends, idle meanwhile, close after
    // its pool's idle timeout (10 s) and are reaped too: their CPU, as of the floor's start, is
    // taken off (until 28 Nov it was counted as the floor's whenever the floor outlasted it).
    const postmaster = await postmasterPid(exec);
    const serverBackends = await backendSnapshot(exec, db.name);
    const reaped0 = { bench: readReapedCpuMs(process.pid), backends: postmaster ? readReapedCpuMs(postmaster) : NaN };
    const floor = runPgbench(db.url, script, { transactionsPerClient: n / CONCURRENCY, defines: { actor } });
    const floorPgbenchCpuMs = (readReapedCpuMs(process.pid) - reaped0.bench) / n;
    const serverBackendsExitedMs = exitedSinceMs(serverBackends);
    const floorPgCpuMs = postmaster ? (readReapedCpuMs(postmaster) - reaped0.backends - serverBackendsExitedMs) / n : NaN;
    if (floor.failed > 0 || floor.count !== n) throw new Error(`pgbench: ${floor.failed} failed, ${floor.count} of ${n} logged`);
    const floorDone = Number((await exec(`SELECT count(*) AS c FROM deletions d JOIN bench_feed f ON f.id = d.customer_id
      WHERE f.n BETWEEN ${floorLo} AND ${floorHi}`)).rows[0].c);
    if (floorDone !== warm + n) throw new Error(`floor deleted ${floorDone} customers, expected ${warm + n}`);
    log(`delete: floor ${round(floor.tps)}/s p99 ${round(floor.p99Ms, 2)} ms${serverBackendsExitedMs > 0 ? ` (the server's idle backends that closed meanwhile, ${round(serverBackendsExitedMs / 1000, 1)} s of CPU, not counted as the floor's)` : ''}`);

    // Does the floor still change the same rows as the server?
    const feedRef = async (k: number) => (await exec(`SELECT id, ref FROM bench_feed WHERE n = ${k}`)).rows[0] as { id: string; ref: string };
    const a = await feedRef(httpHi);
    const b = await feedRef(floorHi);
    const diff = diffShapes(await deletionShape(exec, a.id, a.ref), await deletionShape(exec, b.id, b.ref));
    if (diff.length > 0) log(`delete: WARNING the floor differs from the server's deletion:\n  ${diff.join('\n  ')}`);

    numbers.delete_http_per_s = round(http.perS);
    numbers.delete_http_p50_ms = round(http.p50Ms, 2);
    numbers.delete_http_server_cpu_ms = round(serverCpuMs, 2);
    numbers.delete_http_pg_cpu_ms = round(pgCpuMs, 2);
    numbers.delete_http_client_cpu_ms = round(clientCpuMs, 2);
    if (Number.isFinite(floorPgCpuMs)) numbers.delete_floor_pg_cpu_ms = round(floorPgCpuMs, 2);
    numbers.delete_floor_pgbench_cpu_ms = round(floorPgbenchCpuMs, 2);
    numbers.delete_http_p99_ms = round(http.p99Ms, 2);
    numbers.delete_floor_per_s = round(floor.tps);
    numbers.delete_floor_p50_ms = round(floor.p50Ms, 2);
    numbers.delete_floor_p99_ms = round(floor.p99Ms, 2);
    const perRatio = http.perS / floor.tps;
    const p50Ratio = http.p50Ms / floor.p50Ms;
    const p99Ratio = http.p99Ms / floor.p99Ms;
    const sameWork = diff.length === 0 ? '' : ' (floor shape differs: see log)';
    rows.push({
      figure: 'delete_http_per_s', value: numbers.delete_http_per_s, unit: '/s',
      peer: { figure: 'delete_floor_per_s', value: numbers.delete_floor_per_s },
      ratio: { value: round(perRatio, 2), goal: '>= 0.7', met: perRatio >= 0.7 },
      note: `${n} customers, 16 concurrent; CPU per DELETE: server ${round(serverCpuMs, 1)} ms + its PostgreSQL backends ${round(pgCpuMs, 1)} ms`
        + ` + HTTP client ${round(clientCpuMs, 1)} ms, floor: backends ${Number.isFinite(floorPgCpuMs) ? round(floorPgCpuMs, 1) : '?'} ms + pgbench ${round(floorPgbenchCpuMs, 1)} ms${sameWork}`,
    });
    rows.push({
      figure: 'delete_http_p50_ms', value: numbers.delete_http_p50_ms, unit: 'ms',
      peer: { figure: 'delete_floor_p50_ms', value: numbers.delete_floor_p50_ms },
      ratio: { value: round(p50Ratio, 2), goal: '<= 1.5', met: p50Ratio <= 1.5 },
    });
    rows.push({
      figure: 'delete_http_p99_ms', value: numbers.delete_http_p99_ms, unit: 'ms',
      peer: { figure: 'delete_floor_p99_ms', value: numbers.delete_floor_p99_ms },
      ratio: { value: round(p99Ratio, 2), goal: '<= 2', met: p99Ratio <= 2 },
    });
    rows.push({ figure: 'delete_floor_per_s', value: numbers.delete_floor_per_s, unit: '/s', note: 'pgbench, 16 clients' });
    rows.push({ figure: 'delete_floor_p50_ms', value: numbers.delete_floor_p50_ms, unit: 'ms' });
    rows.push({ figure: 'delete_floor_p99_ms', value: numbers.delete_floor_p99_ms, unit: 'ms' });
    if (large.length > 0) {
      numbers.delete_large_customer_ms = round(large[Math.floor((large.length - 1) / 2)]!, 1);
      rows.push({
        figure: 'delete_large_customer_ms', value: numbers.delete_large_customer_ms, unit: 'ms',
        note: `median of ${large.length}; ${o.largeActivity} activity entries, ${o.largeTransactions} transactions`,
      });
    }
    commands.push(floor.command.replace(db.url, '$DATABASE_URL') + '   # script.sql: node bench/floor.ts > script.sql');
  } finally {
    await server?.stop();
    await client.end().catch(() => {});
    await db.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(defaultKeyringDir(dataDir), { recursive: true, force: true });
  }

  // ---- Embedded database (PGlite in the server process).
  if (o.embeddedCustomers === 0) return { rows, numbers, commands };
  const embedded = await benchEmbedded(o);
  numbers.delete_embedded_per_s = round(embedded.perS);
  numbers.delete_embedded_floor_per_s = round(embedded.floorPerS);
  const embeddedRatio = embedded.perS / embedded.floorPerS;
  rows.push({
    figure: 'delete_embedded_per_s', value: numbers.delete_embedded_per_s, unit: '/s',
    peer: { figure: 'delete_embedded_floor_per_s', value: numbers.delete_embedded_floor_per_s },
    ratio: { value: round(embeddedRatio, 2), goal: '>= 0.5', met: embeddedRatio >= 0.5 },
    note: `${o.embeddedCustomers} customers, HTTP 16 concurrent, p99 ${round(embedded.p99Ms, 1)} ms${embedded.sameShape ? '' : ' (floor shape differs: see log)'}`,
  });
  rows.push({
    figure: 'delete_embedded_floor_per_s', value: numbers.delete_embedded_floor_per_s, unit: '/s',
    note: `bench/floor.ts's statements on PGlite in-process, one after another, p50 ${round(embedded.floorP50Ms, 1)} ms, p99 ${round(embedded.floorP99Ms, 1)} ms`,
  });
  return { rows, numbers, commands };
}

/**
 * delete_embedded_per_s and its floor, on one PGlite database in the state the fixture leaves:
 * the server (its own process, PGlite in it) deletes the first half of the customers over HTTP;
 * then, the server stopped, the floor's statements (bench/floor.ts, the same script pgbench runs)
 * delete the second half on the same database opened in the bench process (no HTTP), one
 * customer after another. Both start with a warm-up of `warmup` customers.
 */
async function benchEmbedded(o: DeleteOptions) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-bench-embedded-'));
  const half = o.embeddedCustomers + o.warmup;
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    await migrateDatabase({ dataDir });
    let ids: string[];
    {
      const pglite = new PGlite(path.join(dataDir, 'pglite'));
      try {
        const exec: Exec = async (text) => pglite.query(text);
        await ensureFeed(exec);
        const apps = await insertApplications(exec);
        ids = await insertFeed(exec, 1, 2 * half);
        await insertCustomers(exec, 1, 2 * half, apps);
        await exec('VACUUM ANALYZE');
      } finally {
        await pglite.close();
      }
    }
    await giveDataKeys({ dataDir }, ids);
    server = await startServer({ dataDir });
    const srv = server;
    const del = (id: string) => request(srv.baseUrl, 'DELETE', `/v1/customers/${id}`);
    await runLoad(ids.slice(0, o.warmup), del, 204);
    const r = await runLoad(ids.slice(o.warmup, half), del, 204);
    if (r.errors > 0) throw new Error(`embedded DELETE: ${r.errors} errors, first: ${r.firstError}`);
    log(`delete: embedded ${round(r.perS)}/s`);
    await server.stop();
    server = undefined;

    // The floor, in-process, on the same database. pgcrypto seals the archive as in the
    // PostgreSQL floor (the server seals it in Node).
    const pglite = new PGlite(path.join(dataDir, 'pglite'), { extensions: { pgcrypto } });
    try {
      const exec: Exec = async (text) => pglite.query(text);
      const actor = String((await exec(`SELECT id FROM api_keys ORDER BY created_at LIMIT 1`)).rows[0].id);
      await exec(`CREATE EXTENSION IF NOT EXISTS pgcrypto`);
      await exec(`CREATE SEQUENCE bench_floor_seq START ${half + 1}`);
      const key = crypto.randomBytes(32).toString('hex');
      const script = floorScript({ seal: (x) => `encrypt(${x}, '\\x${key}'::bytea, 'aes')` });
      await runScriptEmbedded(pglite, script, o.warmup, { actor });
      const floor = await runScriptEmbedded(pglite, script, o.embeddedCustomers, { actor });
      const done = Number((await exec(`SELECT count(*) AS c FROM deletions d JOIN bench_feed f ON f.id = d.customer_id
        WHERE f.n > ${half}`)).rows[0].c);
      if (done !== half) throw new Error(`embedded floor deleted ${done} customers, expected ${half}`);
      const floorPerS = o.embeddedCustomers / (floor.ms / 1000);
      floor.latencies.sort((a, b) => a - b);
      log(`delete: embedded floor ${round(floorPerS)}/s`);
      const feedRef = async (k: number) => (await exec(`SELECT id, ref FROM bench_feed WHERE n = ${k}`)).rows[0] as { id: string; ref: string };
      const a = await feedRef(half);
      const b = await feedRef(2 * half);
      const diff = diffShapes(await deletionShape(exec, a.id, a.ref), await deletionShape(exec, b.id, b.ref));
      if (diff.length > 0) log(`delete: WARNING the embedded floor differs from the server's deletion:\n  ${diff.join('\n  ')}`);
      return { ...r, floorPerS, floorP50Ms: percentile(floor.latencies, 50), floorP99Ms: percentile(floor.latencies, 99), sameShape: diff.length === 0 };
    } finally {
      await pglite.close();
    }
  } finally {
    await server?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(defaultKeyringDir(dataDir), { recursive: true, force: true });
  }
}

export const deleteUnavailable = () => pgbenchAvailable();
