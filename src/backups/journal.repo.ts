import { type QueryCreator, sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { Database } from '../db/schema.ts';
import { SqlText } from '../db/sql-text.ts';
import { confirmationEntry, type JournalEntry } from './erasure-journal.ts';

/** SQL of the erasure journal's table (`erasure_journal`); the file side is erasure-journal.ts. */

/** `inFileSince`: the entry is already in the journal file (a replay of an entry read from it), so it is not pending. */
export async function insertEntry(trx: Db, e: JournalEntry, recordedAt: Date, inFileSince: Date | null = null): Promise<void> {
  await entryInsert(trx, e, recordedAt, inFileSince).execute();
}

/** insertEntry's statement, built on `db` (a deletion defers it into its last statement: DeletionContext.deferredWrites). */
export function entryInsert(db: QueryCreator<Database>, e: JournalEntry, recordedAt: Date, inFileSince: Date | null = null) {
  return db.insertInto('erasureJournal').values({
    id: e.id, kind: e.kind, customerId: e.customerId, caseId: e.caseId, applicationId: e.applicationId,
    actorKeyId: e.actorKeyId, at: e.at, recordedAt, outcome: e.outcome ?? null, fileAppendedAt: inFileSince,
    ...(e.kind === 'record' ? { recordTable: e.recordTable ?? null, recordId: e.recordId ?? null } : {}),
  }).onConflict((oc) => oc.column('id').doNothing());
}

type JournalRow = Awaited<ReturnType<typeof readRows>>[number];
const readRows = (db: Db) => db.selectFrom('erasureJournal').selectAll().orderBy('seq').execute();

/** One table row as the entry the file holds (the same shape for every kind). */
const toEntry = (r: JournalRow): JournalEntry => ({
  id: r.id, kind: r.kind, customerId: r.customerId, caseId: r.caseId, applicationId: r.applicationId,
  actorKeyId: r.actorKeyId, at: new Date(r.at).toISOString(), ...(r.outcome ? { outcome: r.outcome } : {}),
  ...(r.kind === 'record' ? { recordTable: r.recordTable, recordId: r.recordId } : {}),
});

export async function readTable(db: Db): Promise<JournalEntry[]> {
  return (await readRows(db)).map(toEntry);
}

/**
 * Takes the journal-writer lock (`lock`, until commit) and claims every entry not yet in the
 * shared journal file (file_appended_at IS NULL): marks them appended at `at` and returns them in
 * order, in one round trip (migration 0017's function: its claim sees every entry committed before
 * the lock was granted). Call in the transaction that appends them: a failed append rolls the
 * marks back.
 */
export async function claimPending(trx: Db, at: Date, lock: number): Promise<JournalEntry[]> {
  // SQL text (db/sql-text.ts): the journal flush runs after every DELETE, building this with Kysely cost more than running it.
  // Urgent: from here on this flush holds the journal writer's lock, which every deletion's 204 waits for.
  const q = new SqlText().urgent();
  const rows = await q.runCamel<JournalRow>(trx, `SELECT * FROM lethe_journal_claim(${q.param(lock)}, ${q.param(at)})`);
  return rows.sort((a, b) => Number(a.seq) - Number(b.seq)).map(toEntry);
}

/** Marks pending entries (up to `uptoSeq`, or all) as appended to the file. */
export async function markAppended(trx: Db, at: Date, uptoSeq: number | null): Promise<void> {
  let q = trx.updateTable('erasureJournal').set({ fileAppendedAt: at }).where('fileAppendedAt', 'is', null);
  if (uptoSeq !== null) q = q.where('seq', '<=', uptoSeq);
  await q.execute();
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

const tableExists = async (db: Db, name: string) => (await sql<{ t: string | null }>`SELECT to_regclass(${name})::text AS t`.execute(db)).rows[0]?.t != null;

/** Every confirmation persisted by the notifications domain (guarded: its table may not exist). */
export async function syncConfirmations(db: Db): Promise<JournalEntry[]> {
  if (!await tableExists(db, 'deletion_confirmations')) return [];
  const r = await sql<{ id: string; caseId: string; customerId: string; applicationId: string; keyId: string; confirmedAt: Date;
    outcome: 'deleted' | 'no_data_held' }>`
    SELECT c.id, c.case_id, c.customer_id, c.application_id, c.key_id, c.confirmed_at, c.outcome FROM deletion_confirmations c
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
  const outcome = e.outcome ?? 'deleted';
  await sql`INSERT INTO deletion_confirmations (id, case_id, customer_id, application_id, key_id, reason, required_since, confirmed_at, outcome)
    VALUES (${e.id}, ${c.id}, ${e.customerId}, ${e.applicationId}, ${e.actorKeyId}, ${c.reason}, ${c.requiredSince}, ${e.at}, ${outcome})`.execute(trx);
  if (c.status !== 'confirmed') {
    await sql`UPDATE deletion_cases SET status = 'confirmed', confirmed_at = ${e.at}, confirmed_by_key_id = ${e.actorKeyId},
      outcome = ${outcome}, updated_at = ${e.at} WHERE id = ${c.id}`.execute(trx);
  }
  return { outcome: 'applied', caseId: c.id };
}
