import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { openBytes, sealBytes } from './envelope.ts';

/**
 * The keyring: key-epoch keys kept OUTSIDE the database (LETHE_KEYRING_DIR), so no copy of the
 * database (data directory, WAL, dump, replica, backup) holds them. Layout:
 *
 *   keyring.json          {format, id, createdAt}: the keyring's id (not secret), recorded in the
 *                         database (crypto_state.keyring_id) so instances check they share it
 *   epoch-<uuid>.key      the epoch key, sealed (envelope.ts) under a key derived from the master
 *                         key; associated data binds keyring id and epoch id
 *
 * Destroying an epoch removes its file and fsyncs the directory: from then on nothing wrapped
 * by it (customer keys in old copies, sealed archives) can be opened, even with the master key.
 */
export class KeyUnavailableError extends Error {}

export interface Keyring {
  readonly id: string;
  readonly dir: string;
  /** The epoch key (cached in memory); throws KeyUnavailableError once destroyed or absent. */
  epochKey(epochId: string): Buffer;
  has(epochId: string): boolean;
  /** Writes a new epoch key durably (file fsync'd, then the directory). */
  createEpochKey(epochId: string): void;
  /** Removes the epoch's file and fsyncs the directory; forgets it from memory. */
  destroyEpochKey(epochId: string): void;
  /** Epoch ids with a key file. */
  list(): string[];
  /** When the epoch's key file was written (ms since epoch), or null without a file. */
  writtenAt(epochId: string): number | null;
  /** Whether the directory is still there and readable (readiness). */
  reachable(): boolean;
}

const FILE = 'keyring.json';
const epochFile = (dir: string, id: string) => {
  if (!/^[0-9a-f-]{36}$/.test(id)) throw new KeyUnavailableError(`invalid epoch id ${id}`);
  return path.join(dir, `epoch-${id}.key`);
};

function fsyncDir(dir: string) {
  const fd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

function writeDurable(file: string, data: string) {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try { fs.writeSync(fd, data); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

/** Opens (creating if absent) the keyring directory. `wrapKey` is derived from the master key. */
export function openKeyring(dir: string, wrapKey: Buffer): Keyring {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, FILE);
  if (!fs.existsSync(file)) {
    const doc = { format: 'lethe.keyring', id: crypto.randomUUID(), createdAt: new Date().toISOString() };
    try {
      fs.writeFileSync(file, JSON.stringify(doc) + '\n', { flag: 'wx', mode: 0o600 });
      fsyncDir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // another instance created it first
    }
  }
  const id = (JSON.parse(fs.readFileSync(file, 'utf8')) as { id: string }).id;
  const cache = new Map<string, Buffer>();
  const aad = (epochId: string) => `lethe-epoch-key:${id}:${epochId}`;

  return {
    id, dir,
    epochKey(epochId) {
      const cached = cache.get(epochId);
      if (cached) return cached;
      let sealed: Buffer;
      try { sealed = Buffer.from(fs.readFileSync(epochFile(dir, epochId), 'utf8').trim(), 'base64'); } catch {
        throw new KeyUnavailableError(`epoch key ${epochId} is not in the keyring (destroyed, or another keyring)`);
      }
      let key: Buffer;
      try { key = openBytes(wrapKey, sealed, aad(epochId)); } catch {
        throw new KeyUnavailableError(`epoch key ${epochId} cannot be opened: the master key differs from the one that sealed it`);
      }
      cache.set(epochId, key);
      return key;
    },
    has(epochId) { return fs.existsSync(epochFile(dir, epochId)); },
    createEpochKey(epochId) {
      const key = crypto.randomBytes(32);
      writeDurable(epochFile(dir, epochId), sealBytes(wrapKey, key, aad(epochId)).toString('base64') + '\n');
      cache.set(epochId, key);
    },
    destroyEpochKey(epochId) {
      cache.delete(epochId);
      fs.rmSync(epochFile(dir, epochId), { force: true });
      fsyncDir(dir);
    },
    list() {
      return fs.readdirSync(dir).map((n) => /^epoch-([0-9a-f-]{36})\.key$/.exec(n)?.[1]).filter((x): x is string => !!x);
    },
    writtenAt(epochId) {
      try { return fs.statSync(epochFile(dir, epochId)).mtimeMs; } catch { return null; }
    },
    reachable() {
      try { fs.accessSync(file, fs.constants.R_OK); return true; } catch { return false; }
    },
  };
}

/**
 * Default keyring directory: beside the data directory, never inside it — `keyring` next to a
 * data directory named `data` (./data → ./keyring), otherwise `<data dir>-keyring`.
 */
export function defaultKeyringDir(dataDir: string): string {
  const base = path.basename(dataDir);
  return path.join(path.dirname(dataDir), base === 'data' ? 'keyring' : `${base}-keyring`);
}

/** True when `inner` is `outer` or inside it. */
export function isInside(inner: string, outer: string): boolean {
  const rel = path.relative(path.resolve(outer), path.resolve(inner));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}
