// Issue 3 figures: a 1,000,000-row customers export (rows/s, the server's peak RSS) and the
// retention job's redaction of a backlog of soft-deleted customers.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import pg from 'pg';
import { ensureFeed, insertApplications, insertCustomers, insertFeed, withIndexesDeferred, type Exec } from './fixtures.ts';
import {
  ADMIN_KEY, createDatabase, log, migrateDatabase, readVmHwmMb, request, ROOT, round, startServer, timed,
  type GroupResult, type Row,
} from './lib.ts';

export interface ExportOptions { rows: number; redactCustomers: number }

/** Why the group cannot run yet (null when it can). */
export async function exportsUnavailable(): Promise<string | null> {
  const read = (f: string) => { try { return fs.readFileSync(path.join(ROOT, f), 'utf8'); } catch { return ''; } };
  if (!read('src/exports/exports.plugin.ts').includes('registerExportRoutes')) return 'dataset exports (issue 3) are not wired into the server';
  if (!read('src/erasure/erasure.plugin.ts').includes('RedactionBacklog')) return 'the redaction backlog task (issue 3) is not wired into the server';
  return null;
}

/** Every tenth customer deleted (and redacted, as with the default setting): the export pseudonymizes them. */
async function insertExportCustomers(c: pg.Client, count: number) {
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

/** GET the export and drop the bytes (to /dev/null), counting lines. */
function download(baseUrl: string, urlPath: string): Promise<{ status: number; lines: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const sink = fs.createWriteStream('/dev/null');
    http.get(`${baseUrl}${urlPath}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } }, (res) => {
      let lines = 0;
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
      });
      res.pipe(sink);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, lines, bytes }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

export async function benchExports(o: ExportOptions): Promise<GroupResult> {
  const rows: Row[] = [];
  const numbers: Record<string, number> = {};
  const commands: string[] = [];

  // ---- export_rows_per_s, export_peak_rss_mb
  {
    const db = await createDatabase('export');
    const c = new pg.Client({ connectionString: db.url });
    let server: Awaited<ReturnType<typeof startServer>> | undefined;
    try {
      await migrateDatabase({ databaseUrl: db.url });
      await c.connect();
      const fx = await timed(() => insertExportCustomers(c, o.rows));
      log(`exports: ${o.rows} customers inserted in ${round(fx.ms / 1000)} s`);
      server = await startServer({ databaseUrl: db.url });
      const srv = server;
      const rssBefore = srv.peakRssMb();
      const t = await timed(() => download(srv.baseUrl, '/v1/exports/customers?format=jsonl'));
      if (t.value.status !== 200) throw new Error(`export: HTTP ${t.value.status}`);
      if (t.value.lines !== o.rows) throw new Error(`export: ${t.value.lines} lines for ${o.rows} customers`);
      const peak = readVmHwmMb(srv.pid);
      numbers.export_rows_per_s = round(o.rows / (t.ms / 1000));
      numbers.export_peak_rss_mb = round(peak, 1);
      rows.push({
        figure: 'export_rows_per_s', value: numbers.export_rows_per_s, unit: 'rows/s',
        note: `${o.rows} customers (10% deleted, pseudonymized), JSONL, ${round(t.value.bytes / 1048576)} MiB in ${round(t.ms / 1000)} s`,
      });
      rows.push({
        figure: 'export_peak_rss_mb', value: numbers.export_peak_rss_mb, unit: 'MiB',
        note: `server VmHWM; ${round(rssBefore)} MiB before the export`,
      });
      log(`exports: ${numbers.export_rows_per_s} rows/s, peak RSS ${numbers.export_peak_rss_mb} MiB`);
      commands.push(`curl -s -H "authorization: Bearer $KEY" "localhost:8080/v1/exports/customers?format=jsonl" -o /dev/null`);
    } finally {
      await server?.stop();
      await c.end().catch(() => {});
      await db.drop();
    }
  }

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
