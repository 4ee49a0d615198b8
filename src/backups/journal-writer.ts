import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Db } from '../db/database.ts';
import { crashPoint } from '../deployment/crash-points.ts';
import { JOURNAL_WRITER_LOCK } from '../deployment/guards.ts';
import type { JournalEntry } from './erasure-journal.ts';
import { claimPending } from './journal.repo.ts';

/**
 * The post-commit writer of the erasure-journal file (see erasure-journal.ts for what the journal
 * is). Every committed entry is pending in the table until a flush appends it:
 *
 * - Group commit: one flush at a time per database handle and file in this process. A caller
 *   arriving while a flush runs waits for the NEXT one (the running one may have read the pending
 *   set before the caller's commit), and every caller arriving before that next flush starts
 *   shares it. So a caller returns only once a flush that started after its commit has fsync'd
 *   (or failed: every sharer gets the error, the entries stay pending for the repairs).
 * - One flush = BEGIN, the journal-writer advisory lock (one writer across instances) and the claim
 *   of the pending entries in one statement (claimPending), the append + fsync (async: the event loop keeps
 *   serving; the lock and the transaction stay open meanwhile), COMMIT.
 */

/** Observes flushes (the `lethe_erasure_journal_flushes_total` metric). */
export interface FlushObserver { flushed(outcome: 'appended' | 'empty' | 'failed', entries: number): void }

/**
 * Where this process last left the file in a COMMITTED flush: every entry in its first `end`
 * bytes is marked appended in the table. Only a flush that appended and then failed to commit
 * (crash, lost connection) leaves lines of still-pending entries in the file, and it can only
 * have appended them after `end` (it held the lock after our commit), so the next flush reads
 * just the bytes appended since `end`, by any instance: nothing in the usual case of one
 * instance, the other instances' few lines otherwise. A failed flush keeps the previous mark (its
 * lines lie after it). Without a mark (first flush of this process, file replaced) it reads the
 * tail: a failed writer's lines are the last in the file, since every later writer saw them
 * pending and marked them, so twice the bytes of the pending lines (at least 1 MiB) hold them.
 * Replayed entries (read from the file) are inserted already marked, so they never count here.
 */
interface FileMark { dev: number; ino: number; end: number; torn: boolean }

interface Writer {
  running: Promise<number> | null;
  /** The flush queued behind the running one: not started yet, so anyone may still join it. */
  next: { promise: Promise<number>; at: Date } | null;
  mark: FileMark | null;
}

const writers = new WeakMap<Db, Map<string, Writer>>();

const noop = () => {};

/**
 * Appends every pending entry (any instance's) to the file and marks it appended, sharing the
 * flush with concurrent callers; resolves to the number of lines the flush appended.
 */
export function flushPending(db: Db, file: string, at: Date, observer?: FlushObserver): Promise<number> {
  let byFile = writers.get(db);
  if (!byFile) writers.set(db, byFile = new Map());
  let w = byFile.get(file);
  if (!w) byFile.set(file, w = { running: null, next: null, mark: null });
  const writer = w;
  if (writer.next) {
    // Not started yet: it will see this caller's committed entry. Its time is its latest caller's.
    if (at > writer.next.at) writer.next.at = at;
    return writer.next.promise;
  }
  if (!writer.running) return start(writer, db, file, at, observer);
  const next: { promise: Promise<number>; at: Date } = { promise: Promise.resolve(0), at };
  next.promise = writer.running.then(noop, noop).then(() => {
    writer.next = null;
    return start(writer, db, file, next.at, observer);
  });
  writer.next = next;
  return next.promise;
}

function start(w: Writer, db: Db, file: string, at: Date, observer?: FlushObserver): Promise<number> {
  const p = flushOnce(w, db, file, at, observer).finally(() => { if (w.running === p) w.running = null; });
  w.running = p;
  return p;
}

async function flushOnce(w: Writer, db: Db, file: string, at: Date, observer?: FlushObserver): Promise<number> {
  let mark: FileMark | null = null;
  let claimed = 0;
  try {
    const appended = await db.transaction().execute(async (trx) => {
      // The journal-writer lock (one writer across instances) and the claim: one statement.
      const entries = await claimPending(trx, at, JOURNAL_WRITER_LOCK);
      claimed = entries.length;
      if (entries.length === 0) return 0;
      const r = await appendMissing(file, entries, w.mark);
      crashPoint('journal.after-append'); // test-only (NODE_ENV=test): SIGKILL with the lines fsync'd, their marks not committed
      mark = r.mark;
      return r.appended;
    });
    if (mark) w.mark = mark; // committed: everything up to its end is marked appended
    observer?.flushed(claimed ? 'appended' : 'empty', appended);
    return appended;
  } catch (error) {
    observer?.flushed('failed', 0);
    throw error;
  }
}

const TAIL_MIN = 1 << 20;
const CHUNK = 1 << 20;

const { O_APPEND, O_RDWR, O_CREAT, O_EXCL } = fsConstants;

/** The journal file, opened to append (O_APPEND) and read; `created` when this call created it. */
export async function openJournal(file: string): Promise<{ fh: fs.FileHandle; created: boolean }> {
  try {
    return { fh: await fs.open(file, O_APPEND | O_RDWR), created: false };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await fs.mkdir(path.dirname(file), { recursive: true });
  try {
    return { fh: await fs.open(file, O_APPEND | O_RDWR | O_CREAT | O_EXCL, 0o600), created: true };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return { fh: await fs.open(file, O_APPEND | O_RDWR), created: false };
  }
}

/** Appends the entries the file lacks (see FileMark), fsyncs, and returns where the file now ends. */
async function appendMissing(file: string, entries: JournalEntry[], known: FileMark | null): Promise<{ appended: number; mark: FileMark }> {
  const lines = entries.map((e) => `${JSON.stringify(e)}\n`);
  const { fh, created } = await openJournal(file);
  try {
    const st = await fh.stat();
    const same = known !== null && known.dev === st.dev && known.ino === st.ino && st.size >= known.end;
    const bytes = lines.reduce((n, l) => n + Buffer.byteLength(l), 0);
    const from = same ? known.end : Math.max(0, st.size - Math.max(TAIL_MIN, 2 * bytes));
    const scan = await scanIds(fh, from, st.size, new Set(entries.map((e) => e.id)));
    // A line torn by a crash mid-append (not counted above) is closed first, or it would swallow the next line.
    const torn = from < st.size ? scan.torn : same ? known.torn : false;
    const missing = lines.filter((_, i) => !scan.found.has(entries[i]!.id));
    const written = missing.length ? Buffer.from((torn ? '\n' : '') + missing.join('')) : Buffer.alloc(0);
    if (written.length) {
      await fh.write(written);
      await fh.sync();
    }
    if (created || (known !== null && known.ino !== st.ino)) await syncDirectory(file);
    return {
      appended: missing.length,
      mark: { dev: st.dev, ino: st.ino, end: st.size + written.length, torn: written.length ? false : torn },
    };
  } finally {
    await fh.close();
  }
}

/** A new file: its directory entry made durable too. */
export async function syncDirectory(file: string): Promise<void> {
  try { const dh = await fs.open(path.dirname(file), 'r'); try { await dh.sync(); } finally { await dh.close(); } } catch { /* not supported everywhere */ }
}

const ID = /"id":"([0-9a-f-]{36})"/g;

/**
 * Which of `wanted` the file holds, complete lines only, between two offsets; `torn`: the last
 * line has no newline (a crash mid-append: readers ignore it, so its entries are not in the file).
 */
async function scanIds(fh: fs.FileHandle, from: number, to: number, wanted: Set<string>): Promise<{ found: Set<string>; torn: boolean }> {
  const found = new Set<string>();
  let carry = '';
  const buf = Buffer.alloc(Math.min(CHUNK, Math.max(0, to - from)));
  for (let pos = from; pos < to;) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, to - pos), pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
    const text = carry + buf.toString('utf8', 0, bytesRead);
    const cut = text.lastIndexOf('\n') + 1;
    for (const m of text.slice(0, cut).matchAll(ID)) if (wanted.has(m[1]!)) found.add(m[1]!);
    carry = text.slice(cut);
  }
  return { found, torn: carry.length > 0 };
}
