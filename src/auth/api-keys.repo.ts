import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { SqlText } from '../db/sql-text.ts';
import { paginate, type PageQuery } from '../http/pagination.ts';

/** SQL for the key lifecycle (list, read, revoke, last use); issuing and hashing live in api-keys.ts. */

export interface KeyRow {
  id: string;
  kind: 'operator' | 'application';
  label: string | null;
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

const COLUMNS = ['id', 'kind', 'label', 'createdAt', 'expiresAt', 'lastUsedAt', 'revokedAt'] as const;

export async function setKeyDetails(db: Db, id: string, details: { label: string | null; expiresAt: Date | null }) {
  await db.updateTable('apiKeys').set(details).where('id', '=', id).execute();
}

export async function setKeyLabel(db: Db, id: string, label: string | null): Promise<void> {
  await db.updateTable('apiKeys').set({ label }).where('id', '=', id).execute();
}

export async function findKey(db: Db, id: string, lock = false): Promise<KeyRow | undefined> {
  let q = db.selectFrom('apiKeys').select([...COLUMNS]).where('id', '=', id);
  if (lock) q = q.forUpdate();
  return q.executeTakeFirst() as Promise<KeyRow | undefined>;
}

export function listKeys(db: Db, page: PageQuery) {
  return paginate(db.selectFrom('apiKeys').select([...COLUMNS]), 'api_keys', page) as Promise<{ data: KeyRow[]; nextCursor: string | null }>;
}

/** Application ids per key, for the given keys. */
export async function applicationIdsOf(db: Db, keyIds: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>(keyIds.map((id) => [id, []]));
  if (keyIds.length === 0) return out;
  const rows = await db.selectFrom('apiKeyApplications').select(['apiKeyId', 'applicationId'])
    .where('apiKeyId', 'in', keyIds).orderBy('applicationId').execute();
  for (const r of rows) out.get(r.apiKeyId)?.push(r.applicationId);
  return out;
}

/** Serializes revocations (and the last-operator-key rule) across instances until commit. */
export async function lockKeyTable(trx: Db): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(${0x4c4b4559})`.execute(trx);
}

/** Operator keys that still authenticate at `at`, other than `exceptId`. */
export async function countOtherActiveOperatorKeys(trx: Db, exceptId: string, at: Date): Promise<number> {
  const r = await trx.selectFrom('apiKeys').select((eb) => eb.fn.countAll<string>().as('n'))
    .where('kind', '=', 'operator').where('revokedAt', 'is', null).where('id', '!=', exceptId)
    .where((eb) => eb.or([eb('expiresAt', 'is', null), eb('expiresAt', '>', at)]))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

export async function revokeKey(trx: Db, id: string, at: Date): Promise<void> {
  await trx.updateTable('apiKeys').set({ revokedAt: at }).where('id', '=', id).where('revokedAt', 'is', null).execute();
}

/**
 * Records a use of the key, unless a use within the last `minIntervalMs` is already recorded
 * (by any instance): at most one write per key per interval.
 */
export async function touchKey(db: Db, id: string, at: Date, minIntervalMs: number): Promise<void> {
  await db.updateTable('apiKeys').set({ lastUsedAt: at }).where('id', '=', id)
    .where((eb) => eb.or([eb('lastUsedAt', 'is', null), eb('lastUsedAt', '<=', new Date(at.getTime() - minIntervalMs))]))
    .execute();
}

export async function expiryOf(db: Db, id: string): Promise<{ expiresAt: Date | null; lastUsedAt: Date | null } | undefined> {
  return db.selectFrom('apiKeys').select(['expiresAt', 'lastUsedAt']).where('id', '=', id).executeTakeFirst();
}

/** Issuing and authentication (rules and hashing in api-keys.ts). */
export async function insertKeyRow(db: Db, row: {
  kind: 'operator' | 'application'; keyHash: string; keyPrefix: string; createdByKeyId: string | null; createdAt: Date;
}): Promise<string> {
  const r = await db.insertInto('apiKeys').values({ ...row, revokedAt: null }).returning('id').executeTakeFirstOrThrow();
  return r.id;
}

export async function linkKeyApplications(db: Db, apiKeyId: string, applicationIds: string[]): Promise<void> {
  await db.insertInto('apiKeyApplications')
    .values(applicationIds.map((applicationId) => ({ apiKeyId, applicationId })))
    .execute();
}

/** The live (unrevoked) key stored under one of these hashes. */
export async function findLiveKeyByHash(db: Db, hashes: string[]) {
  // Text, not a Kysely builder: every request runs it (src/db/sql-text.ts).
  const q = new SqlText();
  const [row] = await q.runCamel<{ id: string; kind: 'operator' | 'application'; keyHash: string }>(db,
    `SELECT id, kind, key_hash FROM api_keys WHERE key_hash IN (${q.list(hashes)}) AND revoked_at IS NULL`);
  return row;
}

/** Replaces a key's hash if it is still `from`. */
export async function replaceKeyHash(db: Db, id: string, from: string, to: string): Promise<void> {
  await db.updateTable('apiKeys').set({ keyHash: to }).where('id', '=', id).where('keyHash', '=', from).execute();
}

export async function applicationIdsOfKey(db: Db, apiKeyId: string): Promise<string[]> {
  const apps = await db.selectFrom('apiKeyApplications').select('applicationId').where('apiKeyId', '=', apiKeyId)
    .orderBy('applicationId').execute();
  return apps.map((a) => a.applicationId);
}

export async function countKeys(db: Db): Promise<number> {
  const r = await db.selectFrom('apiKeys').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

export function keysByHash(db: Db, hashes: string[]) {
  return db.selectFrom('apiKeys').select(['id', 'kind', 'keyPrefix'])
    .where('keyHash', 'in', hashes).execute();
}

export async function setKeyPrefix(db: Db, id: string, keyPrefix: string): Promise<void> {
  await db.updateTable('apiKeys').set({ keyPrefix }).where('id', '=', id).execute();
}
