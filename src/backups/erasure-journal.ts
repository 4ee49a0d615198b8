import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.ts';
import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { lockJournalWriter } from '../deployment/guards.ts';

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
  kind: 'deletion' | 'confirmation';
  customerId: string;
  caseId: string | null;
  applicationId: string | null;
  actorKeyId: string | null;
  /** When the deletion or confirmation happened (ISO-8601). */
  at: string;
}

export const journalPath = (config: Pick<Config, 'backupDir'>) => path.join(config.backupDir, 'erasure-journal.jsonl');

/** Deletions being replayed: customer id → the journal entry id the replayed deletion must reuse. */
export const replaying = new Map<string, string>();

export function newEntry(input: Omit<JournalEntry, 'id' | 'at'> & { at: Date; id?: string }): JournalEntry {
  return {
    id: input.id ?? crypto.randomUUID(), kind: input.kind, customerId: input.customerId,
    caseId: input.caseId ?? null, applicationId: input.applicationId ?? null, actorKeyId: input.actorKeyId ?? null,
    at: input.at.toISOString(),
  };
}

export async function insertEntry(trx: Db, e: JournalEntry, recordedAt: Date): Promise<void> {
  await trx.insertInto('erasureJournal').values({
    id: e.id, kind: e.kind, customerId: e.customerId, caseId: e.caseId, applicationId: e.applicationId,
    actorKeyId: e.actorKeyId, at: e.at, recordedAt,
  }).onConflict((oc) => oc.column('id').doNothing()).execute();
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

export async function readTable(db: Db): Promise<JournalEntry[]> {
  const rows = await db.selectFrom('erasureJournal').selectAll().orderBy('seq').execute();
  return rows.map((r) => ({
    id: r.id, kind: r.kind, customerId: r.customerId, caseId: r.caseId, applicationId: r.applicationId,
    actorKeyId: r.actorKeyId, at: new Date(r.at).toISOString(),
  }));
}

/** The journal's high-water mark in a database: the last sequence number and the entry count. */
export async function highWaterMark(db: Db): Promise<{ seq: number; count: number }> {
  const r = await db.selectFrom('erasureJournal')
    .select((eb) => [eb.fn.max('seq').as('seq'), eb.fn.countAll().as('count')]).executeTakeFirstOrThrow();
  return { seq: Number(r.seq ?? 0), count: Number(r.count) };
}

/** Ids of the given entries already present in the table. */
export async function presentIds(db: Db, ids: string[]): Promise<Set<string>> {
  const present = new Set<string>();
  for (let i = 0; i < ids.length; i += 5000) {
    const batch = ids.slice(i, i + 5000);
    const rows = await db.selectFrom('erasureJournal').select('id').where('id', 'in', batch).execute();
    for (const r of rows) present.add(r.id);
  }
  return present;
}

/**
 * Appends every pending entry (any instance's) to the file, under the journal-writer lock, and
 * marks them appended. A failed append (backup location unreachable) leaves them pending; a crash
 * after the append but before the commit appends nothing twice (ids already in the file are skipped).
 */
export async function appendPending(db: Db, config: Pick<Config, 'backupDir'>, at: Date): Promise<number> {
  return db.transaction().execute(async (trx) => {
    await lockJournalWriter(trx);
    const rows = await trx.selectFrom('erasureJournal').selectAll().where('fileAppendedAt', 'is', null).orderBy('seq').execute();
    if (rows.length === 0) return 0;
    // Only the file's tail can hold entries appended just before a crash that lost the commit.
    const inFile = tailIds(config);
    const missing = rows.filter((r) => !inFile.has(r.id)).map((r): JournalEntry => ({
      id: r.id, kind: r.kind, customerId: r.customerId, caseId: r.caseId, applicationId: r.applicationId,
      actorKeyId: r.actorKeyId, at: new Date(r.at).toISOString(),
    }));
    appendToFile(config, missing);
    await trx.updateTable('erasureJournal').set({ fileAppendedAt: at }).where('fileAppendedAt', 'is', null)
      .where('seq', '<=', rows.at(-1)!.seq).execute();
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
    await trx.updateTable('erasureJournal').set({ fileAppendedAt: new Date() }).where('fileAppendedAt', 'is', null).execute();
    return missing.size;
  });
}

/** The shape of a persisted confirmation (the notifications domain's ConfirmationView). */
export interface ConfirmationLike {
  id: string; caseId: string; subscriptionId: string; applicationId: string; keyId: string; confirmedAt: Date | string;
}

/** A confirmation's journal entry reuses the confirmation's id, so it is journaled once however often it is seen. */
export const confirmationEntry = (c: ConfirmationLike): JournalEntry => ({
  id: c.id, kind: 'confirmation', customerId: c.subscriptionId, caseId: c.caseId, applicationId: c.applicationId,
  actorKeyId: c.keyId, at: new Date(c.confirmedAt).toISOString(),
});

/** Journals confirmations not yet journaled (table, then file after commit); returns how many were new. */
export async function journalConfirmations(db: Db, config: Pick<Config, 'backupDir'>, entries: JournalEntry[], recordedAt: Date): Promise<number> {
  const present = await presentIds(db, entries.map((e) => e.id));
  const fresh = entries.filter((e) => !present.has(e.id));
  for (const e of fresh) await insertEntry(db, e, recordedAt);
  await appendPending(db, config, recordedAt);
  return fresh.length;
}

const tableExists = async (db: Db, name: string) => (await sql<{ t: string | null }>`SELECT to_regclass(${name})::text AS t`.execute(db)).rows[0]?.t != null;

/** Every confirmation persisted by the notifications domain (guarded: its table may not exist). */
export async function syncConfirmations(db: Db): Promise<JournalEntry[]> {
  if (!await tableExists(db, 'deletion_confirmations')) return [];
  const r = await sql<{ id: string; caseId: string; customerId: string; applicationId: string; keyId: string; confirmedAt: Date }>`
    SELECT c.id, c.case_id, c.customer_id, c.application_id, c.key_id, c.confirmed_at FROM deletion_confirmations c
    WHERE NOT EXISTS (SELECT 1 FROM erasure_journal j WHERE j.id = c.id)`.execute(db);
  return r.rows.map((c) => confirmationEntry({ ...c, subscriptionId: c.customerId }));
}

/**
 * Re-applies a confirmation recorded after a restored backup, directly on the notifications
 * domain's tables (guarded): the confirmation row with its original id and time, and the case
 * moved to confirmed. The case is found by (customer, application): a replayed deletion may have
 * re-created it under a new id.
 */
export async function reapplyConfirmation(trx: Db, e: JournalEntry): Promise<{ outcome: 'applied' | 'present' | 'no_case'; caseId: string | null }> {
  if (!await tableExists(trx, 'deletion_confirmations')) return { outcome: 'no_case', caseId: null };
  const present = await sql`SELECT 1 FROM deletion_confirmations WHERE id = ${e.id}`.execute(trx);
  if (present.rows.length) return { outcome: 'present', caseId: e.caseId };
  const cases = await sql<{ id: string; status: string; reason: string | null; requiredSince: Date | null }>`
    SELECT id, status, reason, required_since FROM deletion_cases
    WHERE customer_id = ${e.customerId} AND application_id = ${e.applicationId}
    FOR UPDATE`.execute(trx);
  const c = cases.rows[0];
  if (!c) return { outcome: 'no_case', caseId: null };
  await sql`INSERT INTO deletion_confirmations (id, case_id, customer_id, application_id, key_id, reason, required_since, confirmed_at)
    VALUES (${e.id}, ${c.id}, ${e.customerId}, ${e.applicationId}, ${e.actorKeyId}, ${c.reason}, ${c.requiredSince}, ${e.at})`.execute(trx);
  if (c.status !== 'confirmed') {
    await sql`UPDATE deletion_cases SET status = 'confirmed', confirmed_at = ${e.at}, confirmed_by_key_id = ${e.actorKeyId},
      updated_at = ${e.at} WHERE id = ${c.id}`.execute(trx);
  }
  return { outcome: 'applied', caseId: c.id };
}
