import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { lockJournalWriter } from '../deployment/guards.ts';
import { flushPending, type FlushObserver, openJournal, syncDirectory } from './journal-writer.ts';
import { insertEntry, markAppended, presentIds, readTable } from './journal.repo.ts';

export type { FlushObserver } from './journal-writer.ts';
export { entryInsert, highWaterMark, insertEntry, presentIds, reapplyConfirmation, readTable, syncConfirmations } from './journal.repo.ts';

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

/** Appends entries and fsyncs (async: the event loop keeps serving); a line is only ever appended, never rewritten. */
export async function appendToFile(config: Pick<Config, 'backupDir'>, entries: JournalEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const file = journalPath(config);
  const { fh, created } = await openJournal(file);
  try {
    // A line torn by a crash mid-append is closed first, or it would swallow the first new line.
    const { size } = await fh.stat();
    const last = Buffer.alloc(1);
    if (size > 0) await fh.read(last, 0, 1, size - 1);
    await fh.write((size > 0 && last[0] !== 0x0a ? '\n' : '') + entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  if (created) await syncDirectory(file);
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

/**
 * Appends every pending entry (any instance's) to the file, under the journal-writer lock, and
 * marks them appended; concurrent callers share one flush that started after their commit
 * (journal-writer.ts). A failed append (backup location unreachable) leaves them pending; a crash
 * after the append but before the commit appends nothing twice (ids already in the file are skipped).
 */
export function appendPending(db: Db, config: Pick<Config, 'backupDir'>, at: Date, observer?: FlushObserver): Promise<number> {
  return flushPending(db, journalPath(config), at, observer);
}

/** Copies every entry the file lacks (table and `extra`) into the file, under the journal-writer lock. */
export async function reconcileFile(db: Db, config: Pick<Config, 'backupDir'>, extra: JournalEntry[] = []): Promise<number> {
  return db.transaction().execute(async (trx) => {
    await lockJournalWriter(trx);
    const inFile = new Set(readFile(config).map((e) => e.id));
    const missing = new Map<string, JournalEntry>();
    for (const e of [...await readTable(trx), ...extra]) if (!inFile.has(e.id)) missing.set(e.id, e);
    await appendToFile(config, [...missing.values()]);
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

