import { sql, type Kysely } from 'kysely';
import type { Db } from '../db/database.ts';

/** SQL for restoring a database backup and replaying erasures; the restore's rules live in restore.ts. */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type RawDb = Kysely<any>;
export const raw = (db: Db) => db.withoutPlugins() as RawDb;

export async function appliedMigrationNames(db: Db): Promise<string[]> {
  const known = await sql<{ name: string }>`SELECT name FROM lethe_migrations`.execute(raw(db));
  return known.rows.map((r) => r.name);
}

/** audit_events refuses TRUNCATE except in a documented restore (migration 0006): this transaction only. */
export async function setAuditRestore(r: RawDb, on: boolean): Promise<void> {
  if (on) await sql`SELECT set_config('lethe.audit_restore', 'on', true)`.execute(r);
  else await sql`SELECT set_config('lethe.audit_restore', 'off', true)`.execute(r);
}

export async function baseTableNames(r: RawDb): Promise<string[]> {
  const current = await sql<{ table_name: string }>`
      SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`.execute(r);
  return current.rows.map((x) => x.table_name);
}

export async function columnsByTable(r: RawDb): Promise<Map<string, Set<string>>> {
  const colRows = await sql<{ table_name: string; column_name: string }>`
      SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()`.execute(r);
  const columns = new Map<string, Set<string>>();
  for (const c of colRows.rows) {
    if (!columns.has(c.table_name)) columns.set(c.table_name, new Set());
    columns.get(c.table_name)!.add(c.column_name);
  }
  return columns;
}

/** The deployment row (null when the query fails, as on a database without the table). */
export function readDeploymentRow(r: RawDb) {
  return sql<Record<string, unknown>>`SELECT * FROM deployment WHERE id = 1`.execute(r).catch(() => null);
}

export async function readKeyringBinding(r: RawDb): Promise<string | null> {
  const keyring = await sql<{ keyring_id: string | null }>`SELECT keyring_id FROM crypto_state WHERE id = 1`.execute(r);
  return keyring.rows[0]?.keyring_id ?? null;
}

export async function truncateTables(r: RawDb, tables: string[]): Promise<void> {
  await sql`TRUNCATE ${sql.join(tables.map((t) => sql.table(t)))}`.execute(r);
}

/** Inserts rows given as JSON objects (one per line) into `table`, keeping identity values. */
export async function insertJsonRows(r: RawDb, table: string, cols: string[], rows: string[]): Promise<void> {
  const list = sql.join(cols.map((c) => sql.ref(c)));
  await sql`INSERT INTO ${sql.table(table)} (${list}) OVERRIDING SYSTEM VALUE
        SELECT ${list} FROM json_populate_recordset(NULL::${sql.table(table)}, ${`[${rows.join(',')}]`}::json)`.execute(r);
}

export async function replaceDeploymentRow(r: RawDb, own: Record<string, unknown>): Promise<void> {
  await sql`DELETE FROM deployment`.execute(r);
  await sql`INSERT INTO deployment (id, key_fingerprint, backup_marker_id, updated_at)
        VALUES (1, ${own.key_fingerprint as string | null}, ${own.backup_marker_id as string | null}, ${own.updated_at as Date})`.execute(r);
}

export async function restoreKeyringBinding(r: RawDb, keyringId: string | null): Promise<void> {
  await sql`INSERT INTO crypto_state (id) VALUES (1) ON CONFLICT (id) DO NOTHING`.execute(r);
  await sql`UPDATE crypto_state SET keyring_id = ${keyringId} WHERE id = 1`.execute(r);
}

export async function serialColumns(r: RawDb) {
  const seqs = await sql<{ table_name: string; column_name: string; seq: string | null }>`
      SELECT table_name, column_name, pg_get_serial_sequence(quote_ident(table_name), column_name) AS seq
      FROM information_schema.columns
      WHERE table_schema = current_schema() AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')`.execute(r);
  return seqs.rows;
}

/** Sets the sequence to continue after the column's largest value. */
export async function resetSequence(r: RawDb, s: { table_name: string; column_name: string; seq: string }): Promise<void> {
  await sql`SELECT setval(${s.seq}::regclass, coalesce((SELECT max(${sql.ref(s.column_name)}) FROM ${sql.table(s.table_name)}), 1),
        (SELECT max(${sql.ref(s.column_name)}) FROM ${sql.table(s.table_name)}) IS NOT NULL)`.execute(r);
}

/** A backup written before migration 0006 has no chain state: its chain is release 1's, unkeyed. */
export async function ensureAuditChainState(r: RawDb): Promise<void> {
  await sql`INSERT INTO audit_chain_state (id, legacy_until_seq, rekeyed_at)
      SELECT 1, coalesce(max(seq), 0), NULL FROM audit_events ON CONFLICT (id) DO NOTHING`.execute(r);
}

export async function isCustomerAlive(db: Db, customerId: string): Promise<boolean> {
  const alive = await db.selectFrom('customers').select('id').where('id', '=', customerId)
    .where('deletedAt', 'is', null).executeTakeFirst();
  return alive !== undefined;
}

/** Lifts the legal hold and unlinks still-pending transactions, as a deletion does. */
export async function clearDeletionBlockers(trx: Db, customerId: string, customerRef: string, at: Date): Promise<void> {
  await trx.updateTable('customers').set({ legalHold: false }).where('id', '=', customerId).execute();
  await trx.updateTable('transactions')
    .set({ customerId: null, customerRef, updatedAt: at })
    .where('customerId', '=', customerId).where('status', '=', 'pending').execute();
}

/** Which of these photo keys a customer row points at. */
export async function photoKeysInUse(db: Db, keys: string[]): Promise<string[]> {
  const rows = await db.selectFrom('customers').select('profilePhotoKey')
    .where('profilePhotoKey', 'in', keys).execute();
  return rows.flatMap((r) => (r.profilePhotoKey ? [r.profilePhotoKey] : []));
}
