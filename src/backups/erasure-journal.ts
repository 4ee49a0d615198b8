import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { lockJournalWriter } from '../deployment/guards.ts';
import { insertEntry, markAppended, pendingEntries, presentIds, readTable } from './journal.repo.ts';

export { highWaterMark, insertEntry, presentIds, reapplyConfirmation, readTable, syncConfirmations } from './journal.repo.ts';

/**
 * The erasure journal: every deletion and every deletion-case confirmation, ids and times only.
 * It lives twice: in the `erasure_journal` table (written in the same transaction as the
 * change) and in an append-only, fsync'd JSONL file outside the database (written after commit),
 * so a restore of an older database cannot make Lethe forget a deletion. The file lives in the
 * backup location every instance shares; appends to a network file system are not atomic, so it
 * has ONE writer at a time: whoever holds the journal-writer advisory lock appends every pending
 * entry (file_appended_at IS NULL) for all instances. Entries stay pending in the table until then.
 */
export interface JournalEntry {
  id: string;
  kind: 'deletion' | 'confirmation' | 'record';
  customerId: string;
  caseId: string | null;
  applicationId: string | null;
  actorKeyId: string | null;
  /** When the deletion or confirmation happened (ISO-8601). */
  at: string;
  /** kind 'record' (one record removed on its own): its SQL table and id. */
  recordTable?: string | null;
  recordId?: string | null;
  /** A confirmation's outcome; absent on deletions and on entries written before it existed (read: deleted). */
  outcome?: 'deleted' | 'no_data_held';
}

export const journalPath = (config: Pick<Config, 'backupDir'>) => path.join(config.backupDir, 'erasure-journal.jsonl');

/** Erasures being replayed: customer id (deletion) or record id (record) → the journal entry id the replay must reuse. */
export const replaying = new Map<string, string>();

export function newEntry(input: Omit<JournalEntry, 'id' | 'at'> & { at: Date; id?: string }): JournalEntry {
  return {
    id: input.id ?? crypto.randomUUID(), kind: input.kind, customerId: input.customerId,
    caseId: input.caseId ?? null, applicationId: input.applicationId ?? null, actorKeyId: input.actorKeyId ?? null,
    at: input.at.toISOString(), ...(input.outcome ? { outcome: input.outcome } : {}),
    ...(input.kind === 'record' ? { recordTable: input.recordTable ?? null, recordId: input.recordId ?? null } : {}),
  };
}

/** Appends entries and fsyncs; a line is only ever appended, never rewritten. */
export function appendToFile(config: Pick<Config, 'backupDir'>, entries: JournalEntry[]): void {
  if (entries.length === 0) return;
  const file = journalPath(config);
  const created = !fs.existsSync(file);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, 'a', 0o600);
  try {
    fs.writeSync(fd, entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  if (created) {
    // Make the new directory entry durable too.
    try { const dfd = fs.openSync(path.dirname(file), 'r'); fs.fsyncSync(dfd); fs.closeSync(dfd); } catch { /* not supported everywhere */ }
  }
}

/** Every entry in the file; a torn last line (crash mid-append) is ignored. */
export function readFile(config: Pick<Config, 'backupDir'>): JournalEntry[] {
  let text: string;
  try { text = fs.readFileSync(journalPath(config), 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: JournalEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const e = JSON.parse(line) as JournalEntry;
      if (typeof e.id === 'string' && typeof e.customerId === 'string' && typeof e.at === 'string') out.push(e);
    } catch { /* torn line */ }
  }
  return out;
}

/** Ids in the last 1 MiB of the file (constant cost per append, whatever the journal's size). */
function tailIds(config: Pick<Config, 'backupDir'>): Set<string> {
  const ids = new Set<string>();
  let fd: number;
  try { fd = fs.openSync(journalPath(config), 'r'); } catch { return ids; }
  try {
    const size = fs.fstatSync(fd).size;
    const len = Math.min(size, 1 << 20);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    for (const m of buf.toString('utf8').matchAll(/"id":"([0-9a-f-]{36})"/g)) ids.add(m[1]!);
  } finally { fs.closeSync(fd); }
  return ids;
}

/**
 * Appends every pending entry (any instance's) to the file, under the journal-writer lock, and
 * marks them appended. A failed append (backup location unreachable) leaves them pending; a crash
 * after the append but before the commit appends nothing twice (ids already in the file are skipped).
 */
export async function appendPending(db: Db, config: Pick<Config, 'backupDir'>, at: Date): Promise<number> {
  return db.transaction().execute(async (trx) => {
    await lockJournalWriter(trx);
    const { entries, lastSeq } = await pendingEntries(trx);
    if (entries.length === 0) return 0;
    // Only the file's tail can hold entries appended just before a crash that lost the commit.
    const inFile = tailIds(config);
    const missing = entries.filter((e) => !inFile.has(e.id));
    appendToFile(config, missing);
    await markAppended(trx, at, lastSeq);
    return missing.length;
  });
}

/** Copies every entry the file lacks (table and `extra`) into the file, under the journal-writer lock. */
export async function reconcileFile(db: Db, config: Pick<Config, 'backupDir'>, extra: JournalEntry[] = []): Promise<number> {
  return db.transaction().execute(async (trx) => {
    await lockJournalWriter(trx);
    const inFile = new Set(readFile(config).map((e) => e.id));
    const missing = new Map<string, JournalEntry>();
    for (const e of [...await readTable(trx), ...extra]) if (!inFile.has(e.id)) missing.set(e.id, e);
    appendToFile(config, [...missing.values()]);
    await markAppended(trx, new Date(), null);
    return missing.size;
  });
}

/** The shape of a persisted confirmation (the notifications domain's ConfirmationView). */
export interface ConfirmationLike {
  id: string; caseId: string; subscriptionId: string; applicationId: string; keyId: string; confirmedAt: Date | string;
  outcome?: 'deleted' | 'no_data_held';
}

/** A confirmation's journal entry reuses the confirmation's id, so it is journaled once however often it is seen. */
export const confirmationEntry = (c: ConfirmationLike): JournalEntry => ({
  id: c.id, kind: 'confirmation', customerId: c.subscriptionId, caseId: c.caseId, applicationId: c.applicationId,
  actorKeyId: c.keyId, at: new Date(c.confirmedAt).toISOString(), ...(c.outcome ? { outcome: c.outcome } : {}),
});

/** Journals confirmations not yet journaled (table, then file after commit); returns how many were new. */
export async function journalConfirmations(db: Db, config: Pick<Config, 'backupDir'>, entries: JournalEntry[], recordedAt: Date): Promise<number> {
  const present = await presentIds(db, entries.map((e) => e.id));
  const fresh = entries.filter((e) => !present.has(e.id));
  for (const e of fresh) await insertEntry(db, e, recordedAt);
  await appendPending(db, config, recordedAt);
  return fresh.length;
}

