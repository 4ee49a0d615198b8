import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { Config } from '../config.ts';
import { type CustomerKeys, KeyringMismatchError } from '../crypto/customer-keys.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { Db } from '../db/database.ts';
import * as repo from './deployment.repo.ts';

/**
 * Start-up guards: what every instance of one deployment must agree on. A refusal is a
 * StartupRefusal; `npm start` prints its message and exits with code 1.
 */
export class StartupRefusal extends Error {}

export const MARKER_FILE = 'lethe-deployment.json';
export const markerPath = (config: Pick<Config, 'backupDir'>) => path.join(config.backupDir, MARKER_FILE);

/** The database records the master key's fingerprint at first start; another key refuses to start. */
export async function checkMasterKey(db: Db, fingerprint: string, at: Date): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const row = await repo.lockDeploymentRow(trx, at);
    let recorded = row.keyFingerprint;
    if (recorded === null) {
      // A database from before this guard: its sealed archives say which key it was used with.
      recorded = await repo.latestArchiveFingerprint(trx);
    }
    if (recorded !== null && recorded !== fingerprint) {
      throw new StartupRefusal(`LETHE_MASTER_KEY differs from the master key this database was set up with ` +
        `(database key fingerprint ${recorded}, this instance ${fingerprint}). Start every instance with the same ` +
        'LETHE_MASTER_KEY (or the same <data dir>/master.key on the embedded database); nothing was changed.');
    }
    if (row.keyFingerprint === null) {
      await repo.updateDeploymentRow(trx, { keyFingerprint: fingerprint }, at);
    }
  });
}

/**
 * The marker file's id; null when it is missing or unreadable. Async (the backup location may be a
 * network mount that hangs): it is read on every DELETE and readiness probe. Callers that come
 * while a read is in flight share it — its answer was read during their request too — so 16
 * concurrent DELETEs cost one read, not 16 (each an open, fstat, read and close).
 */
const markerReads = new Map<string, Promise<string | null>>();
function readMarker(config: Pick<Config, 'backupDir'>): Promise<string | null> {
  const file = markerPath(config);
  let read = markerReads.get(file);
  if (!read) {
    read = fsp.readFile(file, 'utf8').then((text) => {
      const m = JSON.parse(text) as { id?: unknown };
      return typeof m.id === 'string' ? m.id : null;
    }).catch(() => null).finally(() => markerReads.delete(file));
    markerReads.set(file, read);
  }
  return read;
}

/**
 * Every instance proves it sees the same backup location (which holds the shared erasure
 * journal): a marker file there holds an id the database holds too. The first instance writes
 * both; the next ones must find the same id, else they refuse to start.
 */
export async function checkBackupLocation(db: Db, config: Pick<Config, 'backupDir'>, at: Date): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const row = await repo.lockDeploymentRow(trx, at);
    const onDisk = await readMarker(config);
    if (row.backupMarkerId === null) {
      const id = onDisk ?? crypto.randomUUID();
      if (!onDisk) {
        try {
          fs.mkdirSync(config.backupDir, { recursive: true });
          fs.writeFileSync(markerPath(config), JSON.stringify({ id, note: 'Lethe backup location marker: do not delete or edit' }) + '\n', { mode: 0o600 });
        } catch (e) {
          throw new StartupRefusal(`LETHE_BACKUP_DIR ${config.backupDir} is not writable (${(e as Error).message}); ` +
            'it holds the erasure journal and database backups, shared by every instance.');
        }
      }
      await repo.updateDeploymentRow(trx, { backupMarkerId: id }, at);
      return;
    }
    if (onDisk !== row.backupMarkerId) {
      throw new StartupRefusal(`LETHE_BACKUP_DIR ${config.backupDir} is not the backup location the other instances of this ` +
        `database use: its marker file ${MARKER_FILE} is ${onDisk ? `for another deployment (${onDisk})` : 'missing or unreadable'}, ` +
        `the database expects ${row.backupMarkerId}. Mount the shared backup location at LETHE_BACKUP_DIR on every instance ` +
        '(it holds the erasure journal a restore relies on).');
    }
  });
}

/** The marker id the database expects (set once, at the deployment's first start; a restore keeps it). */
export const expectedBackupMarker = (db: Db): Promise<string | null> => repo.backupMarkerId(db);

/**
 * While serving: the backup location is still the one the database expects (readiness, DELETE).
 * `expectedId`: the database's marker id when the caller already read it (it never changes once set).
 */
export async function backupLocationProblem(db: Db, config: Pick<Config, 'backupDir'>, expectedId?: string | null): Promise<string | null> {
  const expected = expectedId ?? await repo.backupMarkerId(db);
  if (!expected) return null;
  if ((await readMarker(config)) === expected) return null;
  return 'The backup location (LETHE_BACKUP_DIR) is unreachable or not the shared one; the erasure journal cannot be written';
}

/**
 * The shared locations outside the database, checked together at start: the backup location
 * (marker file, above) and the keyring (its id bound to the database in crypto_state, every
 * epoch key in use present: crypto/customer-keys.ts). A mismatch of either refuses to start.
 */
export async function checkSharedLocations(db: Db, config: Pick<Config, 'backupDir'>, keys: Pick<CustomerKeys, 'checkKeyring'>, at: Date): Promise<void> {
  await checkBackupLocation(db, config, at);
  try {
    await keys.checkKeyring(db);
  } catch (e) {
    if (e instanceof KeyringMismatchError) throw new StartupRefusal(`LETHE_KEYRING_DIR: ${e.message}`);
    throw e;
  }
}

/**
 * While serving (readiness): the first shared location out of reach, with the problem code its
 * 503 carries (backup location: `backup_location_unavailable`; keyring: `unavailable`), or null.
 */
export async function sharedLocationProblem(db: Db, config: Pick<Config, 'backupDir'>, keyring: Pick<Keyring, 'reachable'>):
Promise<{ code: 'backup_location_unavailable' | 'unavailable'; detail: string } | null> {
  const backup = await backupLocationProblem(db, config);
  if (backup) return { code: 'backup_location_unavailable', detail: backup };
  // Crypto-shredding: without the keyring no new customer key can be wrapped (docs/encryption.md).
  if (!keyring.reachable()) return { code: 'unavailable', detail: 'Keyring not reachable (LETHE_KEYRING_DIR)' };
  return null;
}

/**
 * PostgreSQL: every serving instance holds this advisory lock in shared mode on a session of its
 * own for as long as it serves (a killed process's session ends, so it never goes stale); a
 * restore takes it exclusively, so it refuses while any server serves, and servers refuse to
 * start during a restore.
 */
export const SERVING_LOCK = 0x1e7e_5e7e;

export interface SessionLock { release(): Promise<void> }

async function sessionLock(databaseUrl: string, mode: 'shared' | 'exclusive'): Promise<SessionLock | null> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on('error', () => {});
  await client.connect();
  const fn = mode === 'shared' ? 'pg_try_advisory_lock_shared' : 'pg_try_advisory_lock';
  const r = await client.query<{ ok: boolean }>(`SELECT ${fn}($1) AS ok`, [SERVING_LOCK]);
  if (!r.rows[0]?.ok) { await client.end(); return null; }
  return { release: async () => { await client.end().catch(() => undefined); } };
}

export async function holdServingLock(databaseUrl: string): Promise<SessionLock> {
  const lock = await sessionLock(databaseUrl, 'shared');
  if (!lock) throw new StartupRefusal('a restore of this database is running (lethe backup restore); start the server once it has finished');
  return lock;
}

export async function takeRestoreLock(databaseUrl: string): Promise<SessionLock | null> {
  return sessionLock(databaseUrl, 'exclusive');
}

/** One writer of the shared journal file at a time (advisory lock, deployment.repo.ts). */
export { JOURNAL_WRITER_LOCK, lockJournalWriter } from './deployment.repo.ts';
