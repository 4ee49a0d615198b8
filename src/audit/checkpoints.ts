import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { chainHead, eventHashAt, lockCheckpoints } from './audit.repo.ts';
import { canonicalJson } from './canonical-json.ts';

/**
 * The audit chain's head, anchored where a database edit cannot reach it: HMAC-signed lines
 * appended (never rewritten, fsync'd, mode 0600) to `audit-checkpoints.jsonl` beside the erasure
 * journal in the backup directory, after the events they name were committed. One writer at a
 * time (a database advisory lock, across instances sharing the database and the directory).
 *
 * - `head` lines: the chain's last event (seq, hash) when written. The chain may later be ahead
 *   of the last head line, never behind it (truncation) nor different at its seq (rewriting).
 * - `fork` lines: a documented restore replaced the chain at `replacedSeq` by a restored one
 *   ending at `restoredSeq`; the events in between are lost to that restore, not truncated.
 */
export interface HeadLine { kind: 'head'; seq: number; hash: string; at: string; mac: string }
export interface ForkLine {
  kind: 'fork'; replacedSeq: number; replacedHash: string | null; restoredSeq: number; restoredHash: string | null;
  backupId: string; at: string; mac: string;
}
export type CheckpointLine = HeadLine | ForkLine;


export const checkpointPath = (config: Pick<Config, 'backupDir'>) => path.join(config.backupDir, 'audit-checkpoints.jsonl');

const macOf = (key: Buffer, line: Record<string, unknown>) => {
  const { mac: _mac, ...rest } = line;
  return crypto.createHmac('sha256', key).update(canonicalJson(rest)).digest('hex');
};

/** Appends one line and fsyncs, with async I/O: the event loop keeps serving requests meanwhile. */
async function append(config: Pick<Config, 'backupDir'>, line: CheckpointLine): Promise<void> {
  const file = checkpointPath(config);
  await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const fh = await fsp.open(file, 'a', 0o600);
  try {
    await fh.write(`${JSON.stringify(line)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export interface CheckpointFile { lines: CheckpointLine[]; badLines: number }

/** Every signed line; a line whose signature fails (edited, or torn by a crash) is counted, not used. */
export function readCheckpoints(config: Pick<Config, 'backupDir'>, key: Buffer): CheckpointFile {
  let text: string;
  try { text = fs.readFileSync(checkpointPath(config), 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { lines: [], badLines: 0 };
    throw e;
  }
  const lines: CheckpointLine[] = [];
  let badLines = 0;
  const all = text.split('\n');
  all.forEach((raw, i) => {
    if (!raw.trim()) return;
    try {
      const line = JSON.parse(raw) as CheckpointLine;
      const mac = typeof line.mac === 'string' ? Buffer.from(line.mac, 'hex') : Buffer.alloc(0);
      const expected = Buffer.from(macOf(key, line as unknown as Record<string, unknown>), 'hex');
      if (mac.length === expected.length && crypto.timingSafeEqual(mac, expected)) lines.push(line);
      else badLines++;
    } catch {
      if (i < all.length - 1) badLines++; // a torn last line (crash mid-append) is not tampering
    }
  });
  return { lines, badLines };
}

/** Anchors the current chain may be checked against: head lines, minus those a later fork replaced. */
export function anchorsOf(lines: CheckpointLine[]): { anchors: Map<number, string>; forks: ForkLine[] } {
  const anchors = new Map<number, string>();
  const forks: ForkLine[] = [];
  for (const line of lines) {
    if (line.kind === 'head') anchors.set(line.seq, line.hash);
    else {
      forks.push(line);
      for (const seq of [...anchors.keys()]) if (seq > line.restoredSeq) anchors.delete(seq);
    }
  }
  return { anchors, forks };
}

// The last anchor per file, and how far the file was read: each checkpoint reads only the lines
// appended since (by this or another instance), not the whole file.
const tails = new Map<string, { offset: number; anchors: Map<number, string> }>();

async function lastAnchor(config: Pick<Config, 'backupDir'>, key: Buffer): Promise<{ seq: number; hash: string | null }> {
  const file = checkpointPath(config);
  let size = 0;
  try { size = (await fsp.stat(file)).size; } catch { /* no file yet */ }
  let tail = tails.get(file);
  if (!tail || size < tail.offset) tail = { offset: 0, anchors: new Map() }; // first read, or a replaced file
  if (size > tail.offset) {
    const fh = await fsp.open(file, 'r');
    try {
      const buf = Buffer.alloc(size - tail.offset);
      await fh.read(buf, 0, buf.length, tail.offset);
      const text = buf.toString('utf8');
      const complete = text.lastIndexOf('\n') + 1; // a line still being written is read next time
      const lines: CheckpointLine[] = [];
      for (const raw of text.slice(0, complete).split('\n')) {
        if (!raw.trim()) continue;
        try {
          const line = JSON.parse(raw) as CheckpointLine;
          if (typeof line.mac === 'string' && line.mac === macOf(key, line as unknown as Record<string, unknown>)) lines.push(line);
        } catch { /* unreadable line: verify reports it */ }
      }
      const merged = anchorsOf([...[...tail.anchors].map(([seq, hash]) => ({ kind: 'head', seq, hash, at: '', mac: '' }) as HeadLine), ...lines]).anchors;
      // Only the newest anchor matters here.
      const max = Math.max(0, ...merged.keys());
      tail = { offset: tail.offset + Buffer.byteLength(text.slice(0, complete)), anchors: max ? new Map([[max, merged.get(max)!]]) : new Map() };
    } finally { await fh.close(); }
  }
  tails.set(file, tail);
  const seq = Math.max(0, ...tail.anchors.keys());
  return { seq, hash: tail.anchors.get(seq) ?? null };
}

const headOf = chainHead;

/** The pause between two checkpoints under load (registerAuditCheckpoints). */
export const CHECKPOINT_COOL_DOWN_MS = 200;

export interface CheckpointDeps { db: Db; config: Pick<Config, 'backupDir'>; key: Buffer; now: () => Date }

/**
 * Appends a head line when the chain moved past the last one. Never anchors a chain that is
 * behind or different from the last anchor (that is for verify to report, not to bless).
 * Returns the line written, or null.
 */
export async function checkpointAudit(deps: CheckpointDeps): Promise<HeadLine | null> {
  return deps.db.transaction().execute(async (trx) => {
    await lockCheckpoints(trx);
    const head = await headOf(trx);
    if (!head) return null;
    const last = await lastAnchor(deps.config, deps.key);
    if (last.seq >= head.seq) return null;
    if (last.seq > 0) {
      if ((await eventHashAt(trx, last.seq)) !== last.hash) return null;
    }
    const line: HeadLine = { kind: 'head', seq: head.seq, hash: head.hash, at: deps.now().toISOString(), mac: '' };
    line.mac = macOf(deps.key, line as unknown as Record<string, unknown>);
    await append(deps.config, line);
    return line;
  });
}

/**
 * Records a documented restore: the head it replaces (checkpointed first) and the restored
 * chain's head. Called by the restore around its transaction.
 */
export async function recordFork(deps: CheckpointDeps, input: {
  replaced: { seq: number; hash: string } | null; restored: { seq: number; hash: string } | null; backupId: string;
}): Promise<void> {
  await deps.db.transaction().execute(async (trx) => {
    await lockCheckpoints(trx);
    const line: ForkLine = {
      kind: 'fork', replacedSeq: input.replaced?.seq ?? 0, replacedHash: input.replaced?.hash ?? null,
      restoredSeq: input.restored?.seq ?? 0, restoredHash: input.restored?.hash ?? null, backupId: input.backupId,
      at: deps.now().toISOString(), mac: '',
    };
    line.mac = macOf(deps.key, line as unknown as Record<string, unknown>);
    await append(deps.config, line);
  });
}

export { headOf as auditHeadOf };

/**
 * After every request that may have changed state (its transaction committed before the
 * response), the head is checkpointed: at once after a quiet spell, else within CHECKPOINT_COOL_DOWN_MS.
 * Failures are logged, never fail the request.
 */
export function registerAuditCheckpoints(app: import('fastify').FastifyInstance, deps: CheckpointDeps & { log: { error(o: object, m: string): void } }): void {
  let running: Promise<unknown> | null = null;
  let again = false;
  let later: NodeJS.Timeout | null = null;
  let lastEnd = 0;
  // At most one checkpoint per CHECKPOINT_COOL_DOWN_MS: a request after a quiet spell is checkpointed at
  // once; requests within the cool-down share one checkpoint at its end (under load, a few per
  // second instead of a transaction and an fsync per request).
  const run = (now = false): Promise<unknown> => {
    if (running) { again = true; return running; }
    if (later) return Promise.resolve();
    const wait = lastEnd + CHECKPOINT_COOL_DOWN_MS - Date.now();
    if (wait > 0 && !now) {
      later = setTimeout(() => { later = null; void run(); }, wait);
      return Promise.resolve();
    }
    running = checkpointAudit(deps).catch((err: Error) => deps.log.error({ err: err.message }, 'audit checkpoint not written'))
      .finally(() => {
        running = null;
        lastEnd = Date.now();
        if (again) { again = false; void run(); }
      });
    return running;
  };
  app.addHook('onResponse', async (request) => {
    // Only requests that got past authentication can have changed anything.
    if (request.method === 'GET' || request.method === 'HEAD' || !request.principal) return;
    await run();
  });
  app.addHook('onClose', async () => {
    await running;
    // A checkpoint still waiting for its turn is written before the process goes.
    if (later) { clearTimeout(later); later = null; await run(true); }
  });
}
