// notify_floor_1m_s: the daily notification pass's own SQL, run alone through psql.
//
// The statements are not written here: the server's notifyDue (src/notifications/cases.pass.ts)
// runs against a recording Kysely (the same CamelCasePlugin as src/db/database.ts) whose driver
// answers the pass's two reads outside a transaction (the settings row and the heap page count)
// from the real database and records every statement with its parameters, `begin` and `commit`
// included. The recorded script (parameters inlined as literals, as a custom plan sees them) is
// then piped to one `psql` process. So the floor is the pass's exact statement sequence, page
// ranges and all, minus the Node, pool and HTTP around it; it cannot drift from the server.
//
// Left out: the one audit row the pass appends at the end when it enqueued anything (a lock, a
// read of the chain's end and one INSERT: a few ms whatever the size), because the recorder
// answers every batch with 0 rows.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CamelCasePlugin, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler,
  type CompiledQuery, type DatabaseConnection, type Driver, type QueryResult,
} from 'kysely';
import pg from 'pg';
import type { Ctx } from '../src/context.ts';
import type { Database } from '../src/db/schema.ts';
import { createDailyPass } from '../src/notifications/cases.pass.ts';

/** A statement as psql gets it: the compiled SQL with its parameters inlined. */
export function inlineParameters(q: CompiledQuery): string {
  const params = q.parameters as readonly unknown[];
  const used = new Set<number>();
  const text = q.sql.replace(/\$(\d+)\b/g, (_, n: string) => {
    const i = Number(n) - 1;
    if (i < 0 || i >= params.length) throw new Error(`placeholder $${n} without a parameter in: ${q.sql.slice(0, 200)}`);
    used.add(i);
    return literal(params[i]);
  });
  if (used.size !== params.length) throw new Error(`unused parameters in: ${q.sql.slice(0, 200)}`);
  return text;
}

function literal(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v instanceof Date) return `'${v.toISOString()}'`;
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return `'${s.replaceAll("'", "''")}'`;
}

/**
 * A Kysely driver that records what the pass sends. Outside a transaction (reads only in the
 * pass) it also runs the statement on `reader` and returns its rows; inside one it returns no rows.
 */
function recordingDriver(reader: pg.Client, out: string[]): Driver {
  let inTransaction = false;
  const connection: DatabaseConnection = {
    async executeQuery<R>(q: CompiledQuery): Promise<QueryResult<R>> {
      out.push(inlineParameters(q));
      if (inTransaction) return { rows: [] };
      const r = await reader.query(q.sql, q.parameters as unknown[]);
      return { rows: r.rows as R[] };
    },
    // eslint-disable-next-line require-yield
    async *streamQuery() { throw new Error('the daily pass does not stream'); },
  };
  return {
    async init() {},
    async acquireConnection() { return connection; },
    async beginTransaction(_c, settings) {
      if (settings.isolationLevel || settings.accessMode) throw new Error('the recorder does not replay transaction settings');
      inTransaction = true; out.push('begin');
    },
    async commitTransaction() { inTransaction = false; out.push('commit'); },
    async rollbackTransaction() { inTransaction = false; out.push('rollback'); },
    async releaseConnection() {},
    async destroy() {},
  };
}

/** The statements the server's daily pass would send to the database at `url` now, in order. */
export async function recordDailyPass(url: string, at: Date): Promise<string[]> {
  const reader = new pg.Client({ connectionString: url });
  await reader.connect();
  const statements: string[] = [];
  const db = new Kysely<Database>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => recordingDriver(reader, statements),
      createIntrospector: (k) => new PostgresIntrospector(k),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
    plugins: [new CamelCasePlugin({ maintainNestedObjectKeys: true })],
  });
  const warn: string[] = [];
  const log = { warn: (o: unknown, m?: string) => warn.push(m ?? String(o)), info() {}, debug() {}, error() {} };
  try {
    const pass = createDailyPass({ db, clock: { now: () => at }, log } as unknown as Ctx);
    await pass.notifyDue();
  } finally {
    await db.destroy();
    await reader.end();
  }
  if (!statements.some((s) => /webhook_outbox/.test(s))) throw new Error('the recorded pass wrote no outbox rows');
  return statements;
}

/** Runs `statements` through one `psql` process (the timing includes its start and connection). */
export async function runPsql(url: string, statements: string[]): Promise<{ ms: number; command: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-notify-floor-'));
  const file = path.join(dir, 'daily-pass.sql');
  fs.writeFileSync(file, statements.map((s) => `${s.trim()};\n`).join(''));
  const args = ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', file];
  try {
    const t0 = performance.now();
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn('psql', args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
      child.once('error', reject);
      child.once('exit', (c) => resolve({ code: c, stderr: err }));
    });
    const ms = performance.now() - t0;
    if (code !== 0) throw new Error(`psql exited with ${code}: ${stderr}`);
    return { ms, command: `psql -X -q -A -t -v ON_ERROR_STOP=1 -d <db> -f daily-pass.sql  # ${statements.length} statements recorded from notifyDue` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * What a pass changed, comparable across two copies of one fixture: per case its last notified
 * day, per outbox row its case, application, type and data (not its id or times). Order-free sums
 * of 64-bit hashes, so a million rows compare in one scan each.
 */
export async function passEffects(c: pg.Client): Promise<{ cases: string; outbox: string; outboxRows: number; distinctCases: number }> {
  const cases = await c.query(`SELECT count(*) || ':' || coalesce(sum(hashtextextended(id::text || '|' || coalesce(last_notified_day, '-'), 0)::numeric), 0) AS s
    FROM deletion_cases`);
  const outbox = await c.query(`SELECT count(*) AS n, count(DISTINCT case_id) AS d,
      coalesce(sum(hashtextextended(case_id::text || '|' || application_id::text || '|' || event_type || '|' || (payload->>'type')
        || '|' || (payload->'data')::text, 0)::numeric), 0) AS s
    FROM webhook_outbox`);
  const o = outbox.rows[0];
  return { cases: String(cases.rows[0].s), outbox: `${o.n}:${o.s}`, outboxRows: Number(o.n), distinctCases: Number(o.d) };
}
