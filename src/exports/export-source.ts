import type { Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { pgPoolOf, type Db } from '../db/database.ts';
import type { DatasetDef } from './export-datasets.ts';
import { copyStatement, readBatch, type ExportSelect, type Position } from './exports.repo.ts';

/**
 * Where an export's rows come from: the dataset's SELECT (exports.repo.ts) as rows of text fields
 * (null for SQL NULL), a chunk of rows at a time. Nothing is parsed into JS values here; the
 * formatter (export-format.ts) reads the fields by the select's kinds.
 *
 * PostgreSQL: one `COPY (SELECT …) TO STDOUT` on a connection of the pool. It reads in ONE snapshot
 * held for the export's duration (a long export holds back vacuum's horizon meanwhile), which also
 * makes the export consistent. PGlite has no COPY TO STDOUT: the same SELECT in keyset batches.
 */
export type Fields = Array<string | null>;

/** Rows per keyset query (PGlite): one batch is what the export holds in memory. */
export const BATCH_SIZE = 1000;

/**
 * COPY exports running at once, per pool. Each holds a connection for its whole duration, so at
 * most a quarter of the pool's connections (at least one) serve them; the next exports read in
 * keyset batches instead (a connection per batch only, the same bytes), so exports never take the
 * connections every other request needs.
 */
const copying = new WeakMap<pg.Pool, number>();
export const copyLimit = (pool: pg.Pool): number => Math.max(1, Math.floor((pool.options.max ?? 10) / 4));

export async function* exportRows(db: Db, def: DatasetDef, select: ExportSelect): AsyncGenerator<Fields[]> {
  const pool = pgPoolOf(db);
  // Decided when the export starts reading (a stream never read never counts).
  const running = pool ? copying.get(pool) ?? 0 : 0;
  if (!pool || running >= copyLimit(pool)) {
    yield* batchedRows(db, def, select);
    return;
  }
  copying.set(pool, running + 1);
  try {
    yield* copyRows(pool, copyStatement(select), select.width);
  } finally {
    copying.set(pool, (copying.get(pool) ?? 1) - 1);
  }
}

/** Exported for the test that holds both sources equal on PostgreSQL (test/exports-copy.test.ts). */
export async function* batchedRows(db: Db, def: DatasetDef, select: ExportSelect): AsyncGenerator<Fields[]> {
  let after: Position | null = null;
  for (;;) {
    const { rows, last } = await readBatch(db, def, select, after, BATCH_SIZE);
    if (rows.length > 0) yield rows;
    if (rows.length < BATCH_SIZE) return;
    after = last;
  }
}

/**
 * COPY's rows as they arrive. Backpressure: the copy stream reads the socket only while its reader
 * wants more, and this generator is pulled by the HTTP response; a slow client leaves the rows in
 * PostgreSQL. A COPY stopped part-way (client gone, error) leaves the connection mid-protocol: it is
 * released with an error (the pool discards it) and its socket destroyed, which ends the server's COPY.
 */
async function* copyRows(pool: pg.Pool, statement: string, width: number): AsyncGenerator<Fields[]> {
  const client = await pool.connect();
  let complete = false;
  // The PreparingClient passes a Submittable (not SQL text) to pg untouched.
  const stream = client.query(copyTo(statement));
  // Errors reach the loop below through the iterator; this catches one raised after it stopped listening.
  stream.on('error', () => {});
  try {
    const decoder = new StringDecoder('utf8');
    let rest = '';
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const text = rest + decoder.write(chunk);
      const last = text.lastIndexOf('\n');
      if (last === -1) { rest = text; continue; }
      rest = text.slice(last + 1);
      const rows: Fields[] = [];
      for (let start = 0; start <= last;) {
        const nl = text.indexOf('\n', start);
        rows.push(copyFields(text.slice(start, nl), width));
        start = nl + 1;
      }
      yield rows;
    }
    if (rest + decoder.end() !== '') throw new Error('export: COPY output ended mid-row');
    complete = true;
  } finally {
    if (complete) client.release();
    else {
      client.release(new Error('export: COPY stopped part-way'));
      (client.connection.stream as Socket).destroy();
    }
  }
}

/** One row of COPY's text format: fields split on tabs, `\N` is NULL, backslash escapes undone. */
export function copyFields(line: string, width: number): Fields {
  const raw = line.split('\t');
  if (raw.length !== width) throw new Error(`export: COPY row has ${raw.length} fields, expected ${width}`);
  const out: Fields = new Array(width);
  for (let i = 0; i < width; i++) {
    const f = raw[i]!;
    out[i] = f === '\\N' ? null : f.includes('\\') ? unescapeCopy(f) : f;
  }
  return out;
}

const ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

function unescapeCopy(f: string): string {
  return f.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/gs, (_m, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (e[0]! >= '0' && e[0]! <= '7') return String.fromCharCode(parseInt(e, 8));
    return ESCAPES[e] ?? e;
  });
}
