import crypto from 'node:crypto';
import { ConfigError } from '../config.ts';
import type { Db } from '../db/database.ts';
import * as repo from './api-keys.repo.ts';
import { keyObject } from '../crypto/key-object.ts';

export type KeyKind = 'operator' | 'application';

export interface Principal {
  keyId: string;
  kind: KeyKind;
  applicationIds: string[];
}

const PREFIX: Record<KeyKind, string> = { operator: 'lethe_op_', application: 'lethe_app_' };

/** Release 1 stored unkeyed SHA-256 (64 hex); still accepted once, then rehashed (findPrincipal). */
export const legacyHashKey = (key: string) => crypto.createHash('sha256').update(key).digest('hex');
/** The stored hash of a key: HMAC-SHA256 under a server secret derived from the master key, tagged. */
export const hashKey = (key: string, hashSecret: Buffer) =>
  `hmac1:${crypto.createHmac('sha256', keyObject(hashSecret)).update(key).digest('hex')}`;

/** A chosen LETHE_ADMIN_KEY must resist guessing: at least 32 characters, at least 10 distinct. */
export function weakAdminKeyReason(key: string): string | null {
  if (key.length < 32) return 'LETHE_ADMIN_KEY must be at least 32 characters to become the first operator key';
  if (new Set(key).size < 10) return 'LETHE_ADMIN_KEY has too little variety (fewer than 10 distinct characters)';
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(key)).length;
  if (classes < 2) return 'LETHE_ADMIN_KEY must mix at least two of: lower case, upper case, digits, symbols';
  return null;
}

export function generateKey(kind: KeyKind): string {
  return PREFIX[kind] + crypto.randomBytes(32).toString('base64url');
}

/** Stores a key by its hash only; the plain key exists only in the return value. */
export async function insertKey(
  db: Db,
  input: { kind: KeyKind; applicationIds: string[]; createdByKeyId: string | null; at: Date; plainKey?: string; hashSecret: Buffer },
): Promise<{ id: string; key: string }> {
  const key = input.plainKey ?? generateKey(input.kind);
  const id = await repo.insertKeyRow(db, {
    kind: input.kind,
    keyHash: hashKey(key, input.hashSecret),
    // A chosen key keeps no part of itself in the database; a generated one shows its kind and 3 random characters.
    keyPrefix: input.plainKey !== undefined ? PREFIX[input.kind] : key.slice(0, 12),
    createdByKeyId: input.createdByKeyId,
    createdAt: input.at,
  });
  if (input.applicationIds.length > 0) await repo.linkKeyApplications(db, id, input.applicationIds);
  return { id, key };
}

/**
 * The live key `key` names. A key stored by release 1 (unkeyed SHA-256) is found by that hash
 * once and rehashed in place, so existing keys keep working and the table converges.
 */
export async function findPrincipal(db: Db, key: string, hashSecret: Buffer): Promise<Principal | null> {
  const keyed = hashKey(key, hashSecret);
  const legacy = legacyHashKey(key);
  const row = await repo.findLiveKeyByHash(db, [keyed, legacy]);
  if (!row) return null;
  if (row.keyHash === legacy) {
    await repo.replaceKeyHash(db, row.id, legacy, keyed);
  }
  const applicationIds = row.kind === 'application' ? await repo.applicationIdsOfKey(db, row.id) : [];
  return { keyId: row.id, kind: row.kind, applicationIds };
}

export const countKeys = repo.countKeys;

/**
 * First start with an empty key table: LETHE_ADMIN_KEY becomes the first operator key, else one is
 * generated and returned so the caller can print it once. Serialized by an advisory lock so two
 * instances starting together create one key.
 */
export async function bootstrapOperatorKey(db: Db, adminKey: string | undefined, at: Date, hashSecret: Buffer): Promise<string | null> {
  return db.transaction().execute(async (trx) => {
    await repo.lockKeyTable(trx);
    if ((await countKeys(trx)) > 0) return null;
    // Only a key about to be created must be strong: an existing deployment's key keeps working.
    const weak = adminKey ? weakAdminKeyReason(adminKey) : null;
    if (weak) throw new ConfigError(weak);
    const { key } = await insertKey(trx, {
      kind: 'operator', applicationIds: [], createdByKeyId: null, at, hashSecret,
      ...(adminKey ? { plainKey: adminKey } : {}),
    });
    return adminKey ? null : key;
  });
}

/** A chosen key (LETHE_ADMIN_KEY) stored by release 1 kept its first 12 characters: keep only its kind's prefix. */
export async function forgetChosenKeyPrefix(db: Db, key: string, hashSecret: Buffer): Promise<void> {
  const rows = await repo.keysByHash(db, [hashKey(key, hashSecret), legacyHashKey(key)]);
  for (const row of rows) {
    if (row.keyPrefix !== PREFIX[row.kind]) await repo.setKeyPrefix(db, row.id, PREFIX[row.kind]);
  }
}
