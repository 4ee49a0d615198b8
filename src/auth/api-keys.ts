import crypto from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../db/database.ts';

export type KeyKind = 'operator' | 'application';

export interface Principal {
  keyId: string;
  kind: KeyKind;
  applicationIds: string[];
}

const PREFIX: Record<KeyKind, string> = { operator: 'lethe_op_', application: 'lethe_app_' };

export const hashKey = (key: string) => crypto.createHash('sha256').update(key).digest('hex');

export function generateKey(kind: KeyKind): string {
  return PREFIX[kind] + crypto.randomBytes(32).toString('base64url');
}

/** Stores a key by its hash only; the plain key exists only in the return value. */
export async function insertKey(
  db: Db,
  input: { kind: KeyKind; applicationIds: string[]; createdByKeyId: string | null; at: Date; plainKey?: string },
): Promise<{ id: string; key: string }> {
  const key = input.plainKey ?? generateKey(input.kind);
  const row = await db.insertInto('apiKeys').values({
    kind: input.kind,
    keyHash: hashKey(key),
    keyPrefix: key.slice(0, 12),
    createdByKeyId: input.createdByKeyId,
    createdAt: input.at,
    revokedAt: null,
  }).returning('id').executeTakeFirstOrThrow();
  if (input.applicationIds.length > 0) {
    await db.insertInto('apiKeyApplications')
      .values(input.applicationIds.map((applicationId) => ({ apiKeyId: row.id, applicationId })))
      .execute();
  }
  return { id: row.id, key };
}

export async function findPrincipal(db: Db, key: string): Promise<Principal | null> {
  const row = await db.selectFrom('apiKeys').select(['id', 'kind']).where('keyHash', '=', hashKey(key))
    .where('revokedAt', 'is', null).executeTakeFirst();
  if (!row) return null;
  const apps = row.kind === 'application'
    ? await db.selectFrom('apiKeyApplications').select('applicationId').where('apiKeyId', '=', row.id)
      .orderBy('applicationId').execute()
    : [];
  return { keyId: row.id, kind: row.kind, applicationIds: apps.map((a) => a.applicationId) };
}

export async function countKeys(db: Db): Promise<number> {
  const r = await db.selectFrom('apiKeys').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

/**
 * First start with an empty key table: LETHE_ADMIN_KEY becomes the first operator key, else one is
 * generated and returned so the caller can print it once. Serialized by an advisory lock so two
 * instances starting together create one key.
 */
export async function bootstrapOperatorKey(db: Db, adminKey: string | undefined, at: Date): Promise<string | null> {
  return db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(${0x4c4b4559})`.execute(trx);
    if ((await countKeys(trx)) > 0) return null;
    const { key } = await insertKey(trx, {
      kind: 'operator', applicationIds: [], createdByKeyId: null, at,
      ...(adminKey ? { plainKey: adminKey } : {}),
    });
    return adminKey ? null : key;
  });
}
