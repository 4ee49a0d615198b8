import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * The embedded database belongs to one process. `<data dir>/lethe.lock` names its holder by pid
 * AND process start time (Linux: /proc/<pid>/stat), so the lock never goes stale: a holder killed
 * with SIGKILL leaves a file whose pid is dead (or reused by a process with another start time),
 * which the next process recognises and replaces. A serving server also writes where it listens
 * and a local control token (file mode 0600) so the CLI can ask it to do data-changing work
 * (src/cli/server-client.ts).
 */
export interface LockInfo {
  pid: number;
  /** Process start time in clock ticks since boot (Linux), or null where /proc is missing. */
  startTime: string | null;
  role: 'server' | 'cli';
  port?: number;
  host?: string;
  /** Bearer token accepted by this server for requests of the local CLI. */
  token?: string;
}

export class DataDirLocked extends Error {
  readonly holder: LockInfo;
  constructor(dataDir: string, holder: LockInfo) {
    super(`the data directory ${dataDir} is in use by another Lethe process (pid ${holder.pid}, ${holder.role === 'server' ? 'a serving server' : 'a CLI command'}); ` +
      'the embedded database allows one process at a time');
    this.holder = holder;
  }
}

export const lockPath = (dataDir: string) => path.join(dataDir, 'lethe.lock');

export function processStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime), counted after the ")" that ends the command name.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch { return null; }
}

export function isAlive(info: LockInfo): boolean {
  try { process.kill(info.pid, 0); } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (info.startTime === null) return true;
  const now = processStartTime(info.pid);
  return now === null || now === info.startTime;
}

export function readLock(dataDir: string): LockInfo | null {
  try { return JSON.parse(fs.readFileSync(lockPath(dataDir), 'utf8')) as LockInfo; } catch { return null; }
}

/** The live holder of the data directory, if any. */
export function liveHolder(dataDir: string): LockInfo | null {
  const info = readLock(dataDir);
  return info && isAlive(info) && info.pid !== process.pid ? info : null;
}

export interface DataDirLock {
  info: LockInfo;
  /** Records where this server listens and the CLI's control token. */
  announce(port: number, host: string): string;
  release(): void;
}

export function acquireDataDirLock(dataDir: string, role: LockInfo['role']): DataDirLock {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = lockPath(dataDir);
  const info: LockInfo = { pid: process.pid, startTime: processStartTime(process.pid), role };
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(info), { flag: 'wx', mode: 0o600 });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw e;
      const holder = readLock(dataDir);
      if (holder && holder.pid !== process.pid && isAlive(holder)) throw new DataDirLocked(dataDir, holder);
      // A dead holder (or a half-written file): stale, replace it.
      fs.rmSync(file, { force: true });
    }
  }
  let released = false;
  return {
    info,
    announce(port, host) {
      const token = crypto.randomBytes(32).toString('base64url');
      Object.assign(info, { port, host, token });
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(info), { mode: 0o600 });
      fs.renameSync(tmp, file);
      return token;
    },
    release() {
      if (released) return;
      released = true;
      const current = readLock(dataDir);
      if (current?.pid === process.pid) fs.rmSync(file, { force: true });
    },
  };
}
