// Issue 3 figures: a 1,000,000-row customers export (rows/s, the server's peak RSS) and the
// retention job's redaction of a backlog of soft-deleted customers.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { defaultKeyringDir, openKeyring } from '../src/crypto/keyring.ts';
import { deriveSecrets } from '../src/secrets.ts';
import { exportFloor } from './export-floor.ts';
import { ensureFeed, insertApplications, insertCustomers, insertFeed, withIndexesDeferred, type Exec } from './fixtures.ts';
import {
  ADMIN_KEY, createDatabase, log, MASTER_KEY, migrateDatabase, readVmHwmMb, readVmRssMb, request, resetPeakRss, ROOT, round, startServer, timed,
  type GroupResult, type Row,
} from './lib.ts';

export interface ExportOptions {
  rows: number; redactCustomers: number;
  /** Extra environment of the export's server (experiments: NODE_OPTIONS…). */
  serverEnv?: Record<string, string>;
}

/** Why the group cannot run yet (null when it can). */
export async function exportsUnavailable(): Promise<string | null> {
  const read = (f: string) => { try { return fs.readFileSync(path.join(ROOT, f), 'utf8'); } catch { return ''; } };
  if (!read('src/exports/exports.plugin.ts').includes('registerExportRoutes')) return 'dataset exports (issue 3) are not wired into the server';
  if (!read('src/erasure/erasure.plugin.ts').includes('RedactionBacklog')) return 'the redaction backlog task (issue 3) is not wired into the server';
  if (spawnSync('psql', ['--version']).status !== 0) return 'psql not found (apt-get install postgresql-client): the export floor needs it';
  return null;
}

/** Every tenth customer deleted (and redacted, as with the default setting): the export pseudonymizes them. */
export async function insertExportCustomers(c: pg.Client, count: number) {
  for (let lo = 1; lo <= count; lo += 250_000) {
    const hi = Math.min(count, lo + 249_999);
    await c.query(`INSERT INTO customers (salutation, first_name, last_name, display_name, email, organization, tin,
        last_login_success_ip, last_login_failure_ip, sdk_register_ip, metadata, created_at, updated_at, deleted_at, redacted_at)
      SELECT CASE WHEN d THEN NULL ELSE 'Dr.' END,
        CASE WHEN d THEN 'Masked' ELSE 'Ada' || g END, CASE WHEN d THEN 'Masked' ELSE 'Lovelace' || g END, 'Ada L ' || g,
        CASE WHEN d THEN 'masked.' || substr(md5(g::text), 1, 10) || '@x.invalid' ELSE 'ada.' || g || '@example.com' END,
        CASE WHEN d THEN NULL ELSE 'Analytical ' || g END, CASE WHEN d THEN NULL ELSE 'DE' || (100000000 + g) END,
        CASE WHEN d THEN NULL ELSE '203.0.113.7' END, CASE WHEN d THEN NULL ELSE '198.51.100.23' END,
        CASE WHEN d THEN NULL ELSE '2001:db8::1' END,
        jsonb_build_object('favouriteColour', CASE WHEN d THEN 'masked-' || substr(md5(g::text), 1, 12) ELSE 'blue-' || g END, 'tier', 'gold'),
        now() - (${count} - g) * interval '1 second', now() - (${count} - g) * interval '1 second',
        CASE WHEN d THEN now() END, CASE WHEN d THEN now() END
      FROM (SELECT g, g % 10 = 0 AS d FROM generate_series(${lo}, ${hi}) g) s`);
  }
  await c.query('VACUUM ANALYZE customers');
}

/** GET the export and drop the bytes (to /dev/null), counting lines and hashing the first `hashLines`. */
export function download(baseUrl: string, urlPath: string, hashLines = 0): Promise<{ status: number; lines: number; bytes: number; prefixSha256: string }> {
  return new Promise((resolve, reject) => {
    const sink = fs.createWriteStream('/dev/null');
    const hash = crypto.createHash('sha256');
    http.get(`${baseUrl}${urlPath}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } }, (res) => {
      let lines = 0;
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        const before = lines;
        let hashEnd = before < hashLines ? chunk.length : 0;
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) {
          lines++;
          if (lines === hashLines) hashEnd = i + 1;
        }
        if (hashEnd > 0) hash.update(chunk.subarray(0, hashEnd));
      });
      res.pipe(sink);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, lines, bytes, prefixSha256: hash.digest('hex') }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** Rows of the server's and the floor's output compared byte for byte (the first ones: living and deleted customers). */
const COMPARED_ROWS = 20_000;

export async function benchExports(o: ExportOptions): Promise<GroupResult> {
  const rows: Row[] = [];
  const numbers: Record<string, number> = {};
  const commands: string[] = [];

  // ---- export_rows_per_s, export_rss_growth_mb, export_peak_rss_mb; export_floor_rows_per_s
  {
    const db = await createDatabase('export');
    const c = new pg.Client({ connectionString: db.url });
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-bench-export-'));
    const apiCustomers = Math.min(200, Math.ceil(o.rows / 100));
    let server: Awaited<ReturnType<typeof startServer>> | undefined;
    try {
      await migrateDatabase({ databaseUrl: db.url });
      await c.connect();
      const fx = await timed(() => insertExportCustomers(c, o.rows));
      log(`exports: ${o.rows} customers inserted in ${round(fx.ms / 1000)} s`);
      server = await startServer({ databaseUrl: db.url, dataDir, env: o.serverEnv ?? {} });
      const srv = server;
      // A few customers created through the API, so their personal values are sealed under their
      // own keys (the SQL fixture's are clear text, as written before encryption at rest): the
      // export and the floor decrypt them. Their organization holds characters JSON and COPY escape.
      for (let i = 0; i < apiCustomers; i++) {
        const r = await request(srv.baseUrl, 'POST', '/v1/customers', {
          salutation: 'Dr.', firstName: `Api${i}`, lastName: `Sealed${i}`, displayName: `Api S ${i}`, email: `api.${i}@example.com`,
          organization: `Q "${i}"\t\\ \n é`, tin: `DE9${i}`, lastLoginSuccessIp: '203.0.113.7', lastLoginFailureIp: '198.51.100.23',
          sdkRegisterIp: '2001:db8::1', metadata: { favouriteColour: `red-${i}`, tier: `gold ${i}` },
        });
        if (r.status !== 201) throw new Error(`POST /v1/customers: ${r.status} ${r.body.toString().slice(0, 300)}`);
      }
      const total = o.rows + apiCustomers;
      // Memory: the RSS just before, the peak during the export (VmHWM reset before it, and RSS
      // sampled every 50 ms in case the kernel does not let us reset it).
      const rssBefore = readVmRssMb(srv.pid);
      const reset = resetPeakRss(srv.pid);
      let sampled = rssBefore;
      const sampler = setInterval(() => { sampled = Math.max(sampled, readVmRssMb(srv.pid)); }, 50);
      const t1 = await timed(() => download(srv.baseUrl, '/v1/exports/customers?format=jsonl', COMPARED_ROWS)).finally(() => clearInterval(sampler));
      const checkServer = (r: typeof t1.value) => {
        if (r.status !== 200) throw new Error(`export: HTTP ${r.status}`);
        if (r.lines !== total) throw new Error(`export: ${r.lines} lines for ${total} customers`);
      };
      checkServer(t1.value);
      const peak = reset ? Math.max(readVmHwmMb(srv.pid), sampled) : sampled;
      await server.stop();
      server = undefined;

      // The floor: COPY + the minimal loop, same rows, same output (checked), server stopped.
      // Server, floor, floor, server (ABBA, as the read group): the machine's speed drifts over a
      // minute by more than the difference measured, and each side gets both ends of the window.
      const secrets = deriveSecrets(Buffer.from(MASTER_KEY, 'base64'));
      const runFloor = () => exportFloor({
        dbUrl: db.url, pseudonymKey: secrets.pseudonymKey, exportKey: secrets.exportKey,
        keyring: openKeyring(defaultKeyringDir(dataDir), secrets.keyringKey), hashRows: COMPARED_ROWS,
      });
      const floors = [await runFloor(), await runFloor()];
      server = await startServer({ databaseUrl: db.url, dataDir, env: o.serverEnv ?? {} });
      const srv2 = server;
      const t2 = await timed(() => download(srv2.baseUrl, '/v1/exports/customers?format=jsonl', COMPARED_ROWS));
      checkServer(t2.value);
      await server.stop();
      server = undefined;
      const t = { value: t1.value, ms: t1.ms + t2.ms };
      const floor = { ...floors[0]!, ms: floors[0]!.ms + floors[1]!.ms };
      for (const f of floors) if (f.rows !== total) throw new Error(`export floor: ${f.rows} rows for ${total} customers`);
      const same = floors.every((f) => f.bytes === t.value.bytes && f.prefixSha256 === t.value.prefixSha256)
        && t2.value.bytes === t1.value.bytes && t2.value.prefixSha256 === t1.value.prefixSha256;
      if (!same) {
        log(`exports: WARNING the floor's output differs from the server's (bytes ${floor.bytes} vs ${t.value.bytes}, `
          + `first ${COMPARED_ROWS} rows ${floor.prefixSha256 === t.value.prefixSha256 ? 'equal' : 'differ'})`);
      }

      // Two exports each: rows exported per second of both runs together.
      numbers.export_rows_per_s = round(2 * total / (t.ms / 1000));
      numbers.export_floor_rows_per_s = round(2 * total / (floor.ms / 1000));
      numbers.export_peak_rss_mb = round(peak, 1);
      numbers.export_rss_before_mb = round(rssBefore, 1);
      numbers.export_rss_growth_mb = round(peak - rssBefore, 1);
      const ratio = numbers.export_rows_per_s / numbers.export_floor_rows_per_s;
      rows.push({
        figure: 'export_rows_per_s', value: numbers.export_rows_per_s, unit: 'rows/s',
        peer: { figure: 'export_floor_rows_per_s', value: numbers.export_floor_rows_per_s },
        ratio: { value: round(ratio, 2), goal: '>= 0.7', met: ratio >= 0.7 },
        note: `${o.rows} customers (10% deleted, pseudonymized) + ${apiCustomers} created through the API (sealed), JSONL, ${round(t.value.bytes / 1048576)} MiB, twice (server, floor, floor, server): ${round(t1.ms / 1000)} + ${round(t2.ms / 1000)} s`,
      });
      rows.push({
        figure: 'export_floor_rows_per_s', value: numbers.export_floor_rows_per_s, unit: 'rows/s',
        note: `COPY (psql) + minimal Node loop, ${round(floors[0]!.ms / 1000)} + ${round(floors[1]!.ms / 1000)} s; ${same ? 'same bytes as the server' : 'OUTPUT DIFFERS (see log)'}`,
      });
      rows.push({
        figure: 'export_rss_growth_mb', value: numbers.export_rss_growth_mb, unit: 'MiB',
        ratio: { value: round(numbers.export_rss_growth_mb / 64, 2), goal: '<= 1 (64 MiB)', met: numbers.export_rss_growth_mb <= 64 },
        note: `server: peak during the export ${round(peak)} MiB (export_peak_rss_mb) minus ${round(rssBefore)} MiB before${reset ? '' : ' (peak sampled every 50 ms)'}`,
      });
      log(`exports: ${numbers.export_rows_per_s} rows/s (floor ${numbers.export_floor_rows_per_s}), RSS +${numbers.export_rss_growth_mb} MiB`);
      commands.push(`curl -s -H "authorization: Bearer $KEY" "localhost:8080/v1/exports/customers?format=jsonl" -o /dev/null`);
    } finally {
      await server?.stop();
      await c.end().catch(() => {});
      await db.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
      fs.rmSync(defaultKeyringDir(dataDir), { recursive: true, force: true });
    }
  }
  if (o.redactCustomers === 0) return { rows, numbers, commands };

  // ---- redact_backlog_per_s: the setting off, customers soft deleted, switched on, retention job.
  {
    const db = await createDatabase('redact');
    const c = new pg.Client({ connectionString: db.url });
    let server: Awaited<ReturnType<typeof startServer>> | undefined;
    try {
      await migrateDatabase({ databaseUrl: db.url });
      await c.connect();
      const exec: Exec = async (text) => c.query(text);
      await ensureFeed(exec);
      const apps = await insertApplications(exec);
      await exec(`UPDATE settings SET automatic_personal_data_deletion = false`);
      const n = o.redactCustomers;
      await insertFeed(exec, 1, n);
      const fx = await timed(async () => {
        await withIndexesDeferred(exec, async () => {
          for (let lo = 1; lo <= n; lo += 20_000) await insertCustomers(exec, lo, Math.min(n, lo + 19_999), apps, { softDeleted: true });
        });
        await exec('VACUUM ANALYZE');
      });
      log(`exports: ${n} soft-deleted customers (setting off) inserted in ${round(fx.ms / 1000)} s`);
      server = await startServer({ databaseUrl: db.url });
      const srv = server;
      const on = await request(srv.baseUrl, 'PATCH', '/v1/settings', { automaticPersonalDataDeletion: true });
      if (on.status !== 200) throw new Error(`PATCH /v1/settings: ${on.status} ${on.body.toString().slice(0, 300)}`);
      const t = await timed(() => request(srv.baseUrl, 'POST', '/v1/jobs/retention/run', {}));
      if (t.value.status !== 200) throw new Error(`retention job: ${t.value.status} ${t.value.body.toString().slice(0, 300)}`);
      const left = Number((await c.query(`SELECT count(*) AS n FROM customers WHERE deleted_at IS NOT NULL AND redacted_at IS NULL`)).rows[0].n);
      if (left !== 0) throw new Error(`retention job left ${left} deleted customers unredacted`);
      numbers.redact_backlog_per_s = round(n / (t.ms / 1000));
      rows.push({
        figure: 'redact_backlog_per_s', value: numbers.redact_backlog_per_s, unit: '/s',
        note: `${n} soft-deleted standard customers, POST /v1/jobs/retention/run took ${round(t.ms / 1000)} s`,
      });
      log(`exports: redaction backlog ${numbers.redact_backlog_per_s}/s`);
    } finally {
      await server?.stop();
      await c.end().catch(() => {});
      await db.drop();
    }
  }
  return { rows, numbers, commands };
}
