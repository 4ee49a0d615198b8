import fs from 'node:fs';
import path from 'node:path';

/**
 * Files Lethe creates are readable by its own user only, whatever the umask: the process sets
 * umask 077 before anything is written (PGlite writes its own files), and at start every
 * directory under the data and backup directories is made 0700 and every file 0600 (a data
 * directory written by an earlier release with 755/666).
 */
export const PRIVATE_UMASK = 0o077;

export function restrictUmask(): void {
  try { process.umask(PRIVATE_UMASK); } catch { /* worker threads cannot change it; start-up chmod still runs */ }
}

/** chmod -R: directories 0700, regular files 0600; symlinks are not followed. Returns paths changed. */
export function restrictTree(root: string): number {
  let changed = 0;
  const visit = (p: string) => {
    let st: fs.Stats;
    try { st = fs.lstatSync(p); } catch { return; }
    if (st.isSymbolicLink()) return;
    const want = st.isDirectory() ? 0o700 : 0o600;
    if ((st.mode & 0o777) !== want) { try { fs.chmodSync(p, want); changed++; } catch { /* not ours: reported by the caller's checks */ } }
    if (st.isDirectory()) for (const name of fs.readdirSync(p)) visit(path.join(p, name));
  };
  visit(root);
  return changed;
}
