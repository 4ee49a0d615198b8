import type { Ctx } from '../context.ts';
import { AppError } from '../http/errors.ts';
import type { CliCommand, Registry } from '../plugin/registry.ts';
import { BackupIntegrityError } from './crypto.ts';
import { createDatabaseBackup, listDatabaseBackups, pruneDatabaseBackups } from './database-backup.ts';
import { restoreDatabaseBackup } from './restore.ts';
import { problemDetail, runningServer, type ServerConnection } from '../cli/server-client.ts';
import { DataDirLocked } from '../deployment/data-dir-lock.ts';
import { takeRestoreLock, type SessionLock } from '../deployment/guards.ts';

export const BACKUP_USAGE = 'lethe backup create|list|prune|restore <file>|open <archive-id>';

export interface CliIo { out(line: string): void; err(line: string): void }

const consoleIo: CliIo = { out: (l) => console.log(l), err: (l) => console.error(l) };

/**
 * `lethe backup …` against an open runtime; callable in-process (tests) as well as from the CLI.
 * Returns the exit code.
 */
export async function backupCommand(argv: string[], ctx: Ctx, services: { registry: Registry }, io: CliIo = consoleIo): Promise<number> {
  const [, sub, arg] = argv;
  try {
    switch (sub) {
      case 'create': {
        const r = await createDatabaseBackup(ctx);
        io.out(r.path);
        io.err(`backup ${r.header.id}: ${r.header.tables.length} tables, ${Object.values(r.rows).reduce((a, b) => a + b, 0)} rows, erasure journal at ${r.header.journal.seq}`);
        return 0;
      }
      case 'list': {
        const all = listDatabaseBackups(ctx);
        if (all.length === 0) io.err(`no backups in ${ctx.config.backupDir}`);
        for (const b of all) io.out(`${b.createdAt}  ${b.id}  ${b.databaseKind}  ${b.sizeBytes} bytes  ${b.path}`);
        return 0;
      }
      case 'prune': {
        const r = await pruneDatabaseBackups(ctx, ctx.clock.now());
        for (const f of r.pruned) io.out(`pruned ${f}`);
        for (const f of r.partialRemoved) io.out(`removed partial ${f} (a backup killed mid-write)`);
        io.err(`${r.pruned.length} pruned, ${r.kept} kept`);
        return 0;
      }
      case 'restore': {
        if (!arg) { io.err('lethe backup restore: name the backup file'); return 2; }
        const r = await restoreDatabaseBackup(ctx, services.registry, arg);
        io.out(`restored backup ${r.header.id} taken ${r.header.createdAt} (${Object.values(r.rows).reduce((a, b) => a + b, 0)} rows)`);
        io.out(`replayed ${r.replay.deletionsReplayed} deletion(s) and ${r.replay.confirmationsReplayed} confirmation(s) recorded after it`
          + (r.replay.confirmationsUnapplied ? `; ${r.replay.confirmationsUnapplied} confirmation(s) could not be re-applied` : ''));
        return 0;
      }
      case 'open': {
        if (!arg) { io.err('lethe backup open: name the archive id (GET /v1/backups lists them)'); return 2; }
        const doc = await services.registry.port('archives').open(arg);
        io.out(JSON.stringify(doc, null, 2));
        return 0;
      }
      default:
        io.err(`usage: ${BACKUP_USAGE}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof BackupIntegrityError) {
      io.err(`lethe backup ${sub}: refused: ${error.message}; nothing was changed`);
      return 1;
    }
    if (error instanceof AppError) {
      io.err(`lethe backup ${sub}: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

const RESTORE_REFUSED = 'refused: a Lethe server is serving this database. Stop every server that serves it ' +
  '(e.g. `systemctl stop lethe` on each instance), then run the restore again; nothing was changed';

/** `lethe backup …` while a server serves the embedded database: the server does the work. */
export async function backupViaServer(argv: string[], server: ServerConnection, io: CliIo = consoleIo): Promise<number> {
  const [, sub, arg] = argv;
  const fail = (r: { status: number; body: unknown }) => { io.err(`lethe backup ${sub}: ${problemDetail(r.body)} (server pid ${server.pid}, HTTP ${r.status})`); return 1; };
  switch (sub) {
    case 'create': {
      const r = await server.call<{ id: string; path: string; tables: number; rows: number; journalSeq: number }>('POST', '/v1/backups/database');
      if (r.status !== 201) return fail(r);
      io.out(r.body.path);
      io.err(`backup ${r.body.id}: ${r.body.tables} tables, ${r.body.rows} rows, erasure journal at ${r.body.journalSeq} (taken by the running server, pid ${server.pid})`);
      return 0;
    }
    case 'list': {
      const r = await server.call<{ data: Array<{ id: string; file: string; createdAt: string; databaseKind: string; sizeBytes: number }> }>('GET', '/v1/backups/database');
      if (r.status !== 200) return fail(r);
      for (const b of r.body.data) io.out(`${b.createdAt}  ${b.id}  ${b.databaseKind}  ${b.sizeBytes} bytes  ${b.file}`);
      return 0;
    }
    case 'prune': {
      const r = await server.call<{ pruned: string[]; kept: number }>('POST', '/v1/backups/database/prune');
      if (r.status !== 200) return fail(r);
      for (const f of r.body.pruned) io.out(`pruned ${f}`);
      io.err(`${r.body.pruned.length} pruned, ${r.body.kept} kept`);
      return 0;
    }
    case 'open': {
      if (!arg) { io.err('lethe backup open: name the archive id (GET /v1/backups lists them)'); return 2; }
      const r = await server.call('POST', `/v1/backups/archives/${encodeURIComponent(arg)}/open`);
      if (r.status !== 200) return fail(r);
      io.out(JSON.stringify(r.body, null, 2));
      return 0;
    }
    case 'restore':
      io.err(`lethe backup restore: ${RESTORE_REFUSED}`);
      return 1;
    default:
      io.err(`usage: ${BACKUP_USAGE}`);
      return 2;
  }
}

/** `lethe backup …`, plugged in by the backups domain (backups.plugin.ts). */
export const backupCli: CliCommand = {
  usage: `${BACKUP_USAGE.padEnd(41)} database backups and sealed pre-deletion archives`,
  matches: (argv) => argv[0] === 'backup',
  async run(argv, config) {
    const restoring = argv[1] === 'restore';
    let restoreLock: SessionLock | null = null;
    if (restoring && config.databaseUrl) {
      // PostgreSQL: every serving instance holds the serving lock (shared); the restore needs it alone.
      restoreLock = await takeRestoreLock(config.databaseUrl);
      if (!restoreLock) { console.error(`lethe backup restore: ${RESTORE_REFUSED}`); return 1; }
    } else {
      const server = runningServer(config);
      if (server) return backupViaServer(argv, server);
    }
    // Loaded on use: the runtime plugs every domain, this one included.
    const { startRuntime } = await import('../runtime.ts');
    const { createServices } = await import('../services.ts');
    try {
      let runtime;
      try {
        runtime = await startRuntime(config, { role: 'cli' });
      } catch (error) {
        if (error instanceof DataDirLocked) {
          console.error(`lethe backup ${argv[1] ?? ''}: ${restoring ? RESTORE_REFUSED : error.message}`);
          return 1;
        }
        throw error;
      }
      try {
        return await backupCommand(argv, runtime.ctx, createServices(runtime.ctx));
      } finally {
        await runtime.close();
      }
    } finally {
      await restoreLock?.release();
    }
  },
};
