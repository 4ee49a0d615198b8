import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { appendAudit } from '../audit/audit.repo.ts';
import { DAY_MS } from '../clock.ts';
import type { Ctx } from '../context.ts';
import type { Db } from '../db/database.ts';
import { retentionDays } from './archive.service.ts';
import { BackupIntegrityError, decryptChunk, encryptChunk, fileKey } from './crypto.ts';
import { highWaterMark } from './erasure-journal.ts';
import * as repo from './database-backup.repo.ts';

/**
 * Database backups: one encrypted, self-describing file holding every row of every table.
 *
 * Layout: "LETHEBAK" | uint32 header length | header JSON (plain, authenticated) | chunks.
 * A chunk is: flags (1 = final) | uint32 length | GCM tag (16) | ciphertext. The key is derived
 * per file from the master key (HKDF over secrets.backupKey with the header's salt); the nonce
 * is the chunk index; the associated data binds the header digest, the index and the final flag,
 * so any altered byte, reordered chunk or truncation fails authentication.
 *
 * Plaintext: JSON lines. `["table", name]` starts a table, then one `row_to_json` object per
 * row, then `["end", {rows per table}]`. Portable SQL only (no COPY, no pg_dump): works the same
 * on PGlite and PostgreSQL; tables are written in foreign-key order and read page by page.
 */
export const MAGIC = Buffer.from('LETHEBAK');
export const FORMAT_VERSION = 1;
const CHUNK_BYTES = 1 << 20;
export const BACKUP_EXT = '.lbk';
/** Tables the migration tool owns: never dumped or restored (the schema comes from the code). */
export const SKIP_TABLES = new Set(['lethe_migrations', 'lethe_migrations_lock']);

export interface BackupHeader {
  format: 'lethe.database-backup';
  version: number;
  id: string;
  createdAt: string;
  databaseKind: string;
  migrations: string[];
  /** The erasure journal's high-water mark at the snapshot; later journal entries are replayed on restore. */
  journal: { seq: number; count: number };
  keyFingerprint: string;
  salt: string;
  tables: string[];
}

/** Base tables of the schema, parents before children (foreign-key order). */
export async function tablesInFkOrder(db: Db): Promise<string[]> {
  const names = (await repo.baseTableNamesSorted(db)).filter((n) => !SKIP_TABLES.has(n));
  const fks = await repo.foreignKeyPairs(db);
  const parents = new Map<string, Set<string>>(names.map((n) => [n, new Set()]));
  for (const fk of fks) if (fk.child !== fk.parent && parents.has(fk.child) && parents.has(fk.parent)) parents.get(fk.child)!.add(fk.parent);
  const order: string[] = [];
  const done = new Set<string>();
  const visit = (n: string, stack: Set<string>) => {
    if (done.has(n) || stack.has(n)) return;
    stack.add(n);
    for (const p of parents.get(n) ?? []) visit(p, stack);
    stack.delete(n);
    done.add(n);
    order.push(n);
  };
  for (const n of names) visit(n, new Set());
  return order;
}

class ChunkWriter {
  private buf: Buffer[] = [];
  private size = 0;
  private index = 0;
  private readonly fd: number;
  private readonly key: Buffer;
  private readonly digest: Buffer;
  constructor(fd: number, key: Buffer, digest: Buffer) { this.fd = fd; this.key = key; this.digest = digest; }
  write(text: string) {
    const b = Buffer.from(text);
    this.buf.push(b);
    this.size += b.length;
    if (this.size >= CHUNK_BYTES) this.flush(false);
  }
  flush(final: boolean) {
    const plain = Buffer.concat(this.buf);
    this.buf = [];
    this.size = 0;
    const { body, tag } = encryptChunk(this.key, this.digest, this.index++, final, plain);
    const head = Buffer.alloc(5);
    head.writeUInt8(final ? 1 : 0, 0);
    head.writeUInt32BE(body.length, 1);
    fs.writeSync(this.fd, Buffer.concat([head, tag, body]));
  }
}

const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');

/**
 * Writes a backup of the whole database into config.backupDir; returns its path and header. Audited.
 * The file is written as `<name>.lbk.tmp` and renamed when complete: a process killed mid-write
 * leaves only a `.tmp` file, which is never listed or restored (and is removed by the prune once stale).
 */
export async function createDatabaseBackup(ctx: Ctx, actorKeyId: string | null = null,
  options: { afterTable?: (table: string) => void } = {}): Promise<{ path: string; header: BackupHeader; rows: Record<string, number> }> {
  const at = ctx.clock.now();
  const id = crypto.randomUUID();
  fs.mkdirSync(ctx.config.backupDir, { recursive: true });
  const file = path.join(ctx.config.backupDir, `lethe-${stamp(at)}-${id.slice(0, 8)}${BACKUP_EXT}`);
  const tmp = `${file}.tmp`;
  const rows: Record<string, number> = {};
  let header!: BackupHeader;
  // One read-only snapshot: every table as of the same instant.
  await ctx.db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(async (trx) => {
    const migrations = await repo.migrationNamesSorted(trx);
    const tables = await tablesInFkOrder(trx);
    const pks = await repo.primaryKeys(trx);
    const salt = crypto.randomBytes(16);
    header = {
      format: 'lethe.database-backup', version: FORMAT_VERSION, id, createdAt: at.toISOString(), databaseKind: ctx.dbKind,
      migrations, journal: await highWaterMark(trx),
      keyFingerprint: ctx.secrets.fingerprint, salt: salt.toString('base64'), tables,
    };
    const headerBytes = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(headerBytes.length);
    const digest = crypto.createHash('sha256').update(MAGIC).update(len).update(headerBytes).digest();
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, Buffer.concat([MAGIC, len, headerBytes]));
      const w = new ChunkWriter(fd, fileKey(ctx.secrets.backupKey, salt), digest);
      for (const table of tables) {
        w.write(JSON.stringify(['table', table]) + '\n');
        let n = 0;
        for await (const j of repo.tableRows(trx, table, pks.get(table))) { w.write(j + '\n'); n++; }
        rows[table] = n;
        options.afterTable?.(table);
      }
      w.write(JSON.stringify(['end', rows]) + '\n');
      w.flush(true);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  });
  fs.renameSync(tmp, file);
  await ctx.db.transaction().execute((trx) => appendAudit(trx, {
    type: 'backup.created', actorKeyId, subjectType: 'backup', subjectId: id, at,
    data: { file: path.basename(file), tables: header.tables.length, rows: Object.values(rows).reduce((a, b) => a + b, 0), journalSeq: header.journal.seq },
  }));
  return { path: file, header, rows };
}

/** Reads and checks a backup's header (not yet its contents). */
export function readHeader(file: string): { header: BackupHeader; digest: Buffer; offset: number } {
  let fd: number;
  try { fd = fs.openSync(file, 'r'); } catch (e) {
    throw new BackupIntegrityError(`cannot open ${file}: ${(e as Error).message}`);
  }
  try {
    const start = Buffer.alloc(12);
    if (fs.readSync(fd, start, 0, 12, 0) < 12 || !start.subarray(0, 8).equals(MAGIC)) {
      throw new BackupIntegrityError(`${path.basename(file)} is not a Lethe database backup (bad magic)`);
    }
    const len = start.readUInt32BE(8);
    if (len > 16 * 1024 * 1024) throw new BackupIntegrityError('backup header is corrupt (length)');
    const headerBytes = Buffer.alloc(len);
    if (fs.readSync(fd, headerBytes, 0, len, 12) < len) throw new BackupIntegrityError('backup header is truncated');
    let header: BackupHeader;
    try { header = JSON.parse(headerBytes.toString('utf8')) as BackupHeader; } catch {
      throw new BackupIntegrityError('backup header is corrupt (not JSON)');
    }
    if (header.format !== 'lethe.database-backup') throw new BackupIntegrityError('backup header is corrupt (format)');
    if (header.version !== FORMAT_VERSION) throw new BackupIntegrityError(`unsupported backup version ${String(header.version)}`);
    const digest = crypto.createHash('sha256').update(MAGIC).update(start.subarray(8, 12)).update(headerBytes).digest();
    return { header, digest, offset: 12 + len };
  } finally {
    fs.closeSync(fd);
  }
}

/** Decrypts the file chunk by chunk, authenticating each before yielding its lines. */
export async function* readBackupLines(file: string, backupKey: Buffer): AsyncGenerator<string> {
  const { header, digest, offset } = readHeader(file);
  const key = fileKey(backupKey, Buffer.from(header.salt, 'base64'));
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    let pos = offset;
    let index = 0;
    let carry = '';
    for (;;) {
      const head = Buffer.alloc(21);
      if (fs.readSync(fd, head, 0, 21, pos) < 21) throw new BackupIntegrityError('backup is truncated (no final chunk)');
      const flags = head.readUInt8(0);
      const len = head.readUInt32BE(1);
      if (flags > 1 || len > CHUNK_BYTES * 2 || pos + 21 + len > size) throw new BackupIntegrityError(`backup is corrupt at chunk ${index}`);
      const body = Buffer.alloc(len);
      fs.readSync(fd, body, 0, len, pos + 21);
      const plain = decryptChunk(key, digest, index, flags === 1, body, head.subarray(5, 21));
      pos += 21 + len;
      index++;
      const text = carry + plain.toString('utf8');
      const lines = text.split('\n');
      carry = lines.pop() ?? '';
      for (const l of lines) yield l;
      if (flags === 1) {
        if (pos !== size) throw new BackupIntegrityError('backup has data after its final chunk');
        if (carry) yield carry;
        return;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Authenticates every chunk without changing anything; returns the header and row counts. */
export async function verifyBackup(file: string, backupKey: Buffer, fingerprint: string): Promise<{ header: BackupHeader; rows: Record<string, number> }> {
  const { header } = readHeader(file);
  if (header.keyFingerprint !== fingerprint) {
    throw new BackupIntegrityError(`backup was sealed under another master key (fingerprint ${header.keyFingerprint}, this server ${fingerprint})`);
  }
  let end: Record<string, number> | null = null;
  for await (const line of readBackupLines(file, backupKey)) {
    if (line.startsWith('["end",')) end = (JSON.parse(line) as [string, Record<string, number>])[1];
  }
  if (!end) throw new BackupIntegrityError('backup has no end marker');
  return { header, rows: end };
}

export interface BackupFileInfo { path: string; file: string; id: string; createdAt: string; databaseKind: string; sizeBytes: number }

/** Backup files in config.backupDir, oldest first; files that are not backups are skipped. */
export function listDatabaseBackups(ctx: Pick<Ctx, 'config'>): BackupFileInfo[] {
  let names: string[];
  try { names = fs.readdirSync(ctx.config.backupDir); } catch { return []; }
  const out: BackupFileInfo[] = [];
  for (const name of names.filter((n) => n.endsWith(BACKUP_EXT))) {
    const p = path.join(ctx.config.backupDir, name);
    try {
      const { header } = readHeader(p);
      out.push({ path: p, file: name, id: header.id, createdAt: header.createdAt, databaseKind: header.databaseKind, sizeBytes: fs.statSync(p).size });
    } catch { /* not ours or unreadable */ }
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

/** A `.tmp` left this long without a write belongs to a process that died mid-backup (a live writer keeps writing). */
const STALE_PARTIAL_MS = 3_600_000;

/** Removes partial backup files (`*.lbk.tmp`) untouched for an hour (real time: file times are the disk's); returns their names. */
export function removeStalePartialBackups(ctx: Pick<Ctx, 'config'>): string[] {
  let names: string[];
  try { names = fs.readdirSync(ctx.config.backupDir); } catch { return []; }
  const removed: string[] = [];
  for (const name of names.filter((n) => n.endsWith(`${BACKUP_EXT}.tmp`))) {
    const p = path.join(ctx.config.backupDir, name);
    try {
      if (Date.now() - fs.statSync(p).mtimeMs < STALE_PARTIAL_MS) continue;
      fs.rmSync(p, { force: true });
      removed.push(name);
    } catch { /* gone meanwhile */ }
  }
  return removed;
}

/**
 * Deletes backup files older than backupRetentionDays (by the time in their header), and partial
 * files of backups killed mid-write (stale `.lbk.tmp`). Audited when a backup file goes.
 */
export async function pruneDatabaseBackups(ctx: Ctx, at: Date, actorKeyId: string | null = null): Promise<{ pruned: string[]; kept: number; partialRemoved: string[] }> {
  const days = await retentionDays(ctx.db);
  const cutoff = at.getTime() - days * DAY_MS;
  const partialRemoved = removeStalePartialBackups(ctx);
  const all = listDatabaseBackups(ctx);
  const old = all.filter((b) => Date.parse(b.createdAt) <= cutoff);
  for (const b of old) fs.rmSync(b.path, { force: true });
  if (old.length > 0) {
    await ctx.db.transaction().execute((trx) => appendAudit(trx, {
      type: 'backup.pruned', actorKeyId, subjectType: 'backup', subjectId: null, at,
      data: { backupIds: old.map((b) => b.id), files: old.map((b) => b.file), retentionDays: days },
    }));
  }
  return { pruned: old.map((b) => b.file), kept: all.length - old.length, partialRemoved };
}
