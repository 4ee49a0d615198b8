import type { Ctx } from '../context.ts';
import { AppError } from '../http/errors.ts';
import type { CliCommand, Registry } from '../plugin/registry.ts';
import { BackupIntegrityError } from './crypto.ts';
import { createDatabaseBackup, listDatabaseBackups, pruneDatabaseBackups } from './database-backup.ts';
import { restoreDatabaseBackup } from './restore.ts';

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

/** `lethe backup …`, plugged in by the backups domain (backups.plugin.ts). */
export const backupCli: CliCommand = {
  usage: `${BACKUP_USAGE.padEnd(41)} database backups and sealed pre-deletion archives`,
  matches: (argv) => argv[0] === 'backup',
  async run(argv, config) {
    // Loaded on use: the runtime plugs every domain, this one included.
    const { startRuntime } = await import('../runtime.ts');
    const { createServices } = await import('../services.ts');
    const runtime = await startRuntime(config);
    try {
      return await backupCommand(argv, runtime.ctx, createServices(runtime.ctx));
    } finally {
      await runtime.close();
    }
  },
};
