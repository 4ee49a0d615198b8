import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { insertEntry, presentIds, readTable } from './journal.repo.ts';

export { highWaterMark, insertEntry, presentIds, reapplyConfirmation, readTable, syncConfirmations } from './journal.repo.ts';

/**
 * The erasure journal: every deletion and every deletion-case confirmation, ids and times only.
 * It lives twice: in the `erasure_journal` table (written in the same transaction as the
 * change) and in an append-only, fsync'd JSONL file outside the database (written after commit),
 * so a restore of an older database cannot make Lethe forget a deletion.
 */
export interface JournalEntry {
  id: string;
  kind: 'deletion' | 'confirmation';
  customerId: string;
  caseId: string | null;
  applicationId: string | null;
  actorKeyId: string | null;
  /** When the deletion or confirmation happened (ISO-8601). */
  at: string;
  /** A confirmation's outcome; absent on deletions and on entries written before it existed (read: deleted). */
  outcome?: 'deleted' | 'no_data_held';
}

export const journalPath = (config: Pick<Config, 'backupDir'>) => path.join(config.backupDir, 'erasure-journal.jsonl');

/** Deletions being replayed: customer id → the journal entry id the replayed deletion must reuse. */
export const replaying = new Map<string, string>();

export function newEntry(input: Omit<JournalEntry, 'id' | 'at'> & { at: Date; id?: string }): JournalEntry {
  return {
    id: input.id ?? crypto.randomUUID(), kind: input.kind, customerId: input.customerId,
    caseId: input.caseId ?? null, applicationId: input.applicationId ?? null, actorKeyId: input.actorKeyId ?? null,
    at: input.at.toISOString(), ...(input.outcome ? { outcome: input.outcome } : {}),
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

/** Copies table entries the file lacks (a crash between commit and append) into the file. */
export async function reconcileFile(db: Db, config: Pick<Config, 'backupDir'>, extra: JournalEntry[] = []): Promise<number> {
  const inFile = new Set(readFile(config).map((e) => e.id));
  const missing = new Map<string, JournalEntry>();
  for (const e of [...await readTable(db), ...extra]) if (!inFile.has(e.id)) missing.set(e.id, e);
  appendToFile(config, [...missing.values()]);
  return missing.size;
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
  appendToFile(config, fresh);
  return fresh.length;
}

