import type { Db } from '../db/database.ts';
import * as m0005 from '../db/migrations/0005-backups.ts';
import type { DeletionStep, DomainPlugin } from '../plugin/registry.ts';
import { SETTINGS_SECTIONS } from '../settings/settings.repo.ts';
import { backupCli } from './backups.cli.ts';
import { createArchiveService, registerArchiveRoutes, type ArchiveService } from './archive.service.ts';
import { registerDatabaseBackupRoutes } from './database-backup.routes.ts';
import { pruneDatabaseBackups } from './database-backup.ts';
import * as journal from './erasure-journal.ts';
import { backupLocationProblem, expectedBackupMarker } from '../deployment/guards.ts';
import { crashPoint } from '../deployment/crash-points.ts';
import { AppError } from '../http/errors.ts';

/** What the backups domain offers others: the erasure journal and the sealed archives. */
export interface ErasureJournalPort {
  /**
   * Records a deletion-case confirmation inside the confirmation's own transaction (the entry
   * reuses the confirmation's id); call (and await) the returned function after commit: it appends
   * the pending entries to the shared journal file (one writer at a time).
   */
  recordConfirmation(trx: Db, input: {
    confirmationId: string; caseId: string; applicationId: string; customerId: string; actorKeyId: string | null; at: Date;
    /** What the application did (journaled so a restore's replay keeps it). */
    outcome: 'deleted' | 'no_data_held';
  }): Promise<() => Promise<void>>;
  /**
   * Records one record removed on its own (a card, an address) inside its erasure's transaction,
   * so a restore of an older backup removes it again; call the returned function after commit.
   */
  recordRemoval(trx: Db, input: {
    customerId: string; recordTable: string; recordId: string; actorKeyId: string | null; at: Date;
  }): Promise<() => Promise<void>>;
}

declare module '../plugin/registry.ts' {
  interface Ports {
    erasureJournal: ErasureJournalPort;
    archives: ArchiveService;
  }
}

/** Pre-deletion archives, database backups, the erasure journal, restore with erasure replay. */
export const backupsPlugin: DomainPlugin = {
  name: 'backups',
  migrations: { '0005-backups': m0005 },
  cli: [backupCli],
  plug(ctx, r) {
    r.settingsSection({ fields: SETTINGS_SECTIONS.backups });
    const archives = createArchiveService(ctx, r.port('subjectExport'));
    r.provide('archives', archives);
    r.deletionStep(archives.step);
    r.routes((app) => registerArchiveRoutes(app, archives));
    r.routes((app) => registerDatabaseBackupRoutes(app, ctx, archives));

    // Flushes of the journal file, counted (lethe_erasure_journal_flushes_total).
    const flushes: journal.FlushObserver = {
      flushed(outcome, lines) { ctx.metrics.journalFlushes.inc({ outcome }); if (lines) ctx.metrics.journalLines.inc(lines); },
    };
    const appendPending = (at: Date) => journal.appendPending(ctx.db, ctx.config, at, flushes);
    // A replayed erasure's entry was read from the file (or put there first by the restore): not pending.
    const inFileSince = (replayed: boolean) => (replayed ? ctx.clock.now() : null);

    // The database's backup-marker id never changes once set (first start; a restore keeps it):
    // read once, not by a statement in every DELETE. The marker file itself is read every time.
    let markerId: string | null = null;
    const journalStep: DeletionStep<journal.JournalEntry> = {
      name: 'erasure-journal',
      phase: 'after',
      // Last: it records the deletion once every other step has done its part.
      order: 90,
      async run(trx, c) {
        // No deletion without its journal entry: refused (503, rolled back) while the shared location is unreachable.
        markerId ??= await expectedBackupMarker(trx);
        const problem = await backupLocationProblem(trx, ctx.config, markerId);
        if (problem) throw new AppError('backup_location_unavailable', `${problem}; the customer was not deleted, retry once it is back`);
        const replayed = journal.replaying.get(c.customer.id);
        const entry = journal.newEntry({
          kind: 'deletion', customerId: c.customer.id, caseId: null, applicationId: null, actorKeyId: c.actorKeyId, at: c.at,
          ...(replayed ? { id: replayed } : {}),
        });
        // Written by the deletion's last statement (same transaction): a round trip fewer.
        const recordedAt = ctx.clock.now();
        c.deferredWrites.push((db) => journal.entryInsert(db, entry, recordedAt, inFileSince(replayed !== undefined)));
        return entry;
      },
      async afterCommit() {
        crashPoint('delete.after-commit');
        // The entry is pending in the table; a crash before this line is repaired at start, by the
        // retention job and by a restore (appendPending / reconcileFile). Concurrent deletions share
        // one flush, and this returns (so the 204 goes out) only once one that started after this
        // commit has fsync'd the file: a deletion that got its 204 is in the journal file.
        await appendPending(ctx.clock.now());
      },
    };
    r.deletionStep(journalStep);

    r.provide('erasureJournal', {
      async recordConfirmation(trx, input) {
        const { confirmationId, ...rest } = input;
        const entry = journal.newEntry({ kind: 'confirmation', id: confirmationId, ...rest });
        await journal.insertEntry(trx, entry, ctx.clock.now());
        return async () => { await appendPending(ctx.clock.now()); };
      },
      async recordRemoval(trx, input) {
        const replayed = journal.replaying.get(input.recordId);
        const entry = journal.newEntry({
          kind: 'record', caseId: null, applicationId: null, ...input,
          // A replay (restore) reuses the original entry's id.
          ...(replayed ? { id: replayed } : {}),
        });
        await journal.insertEntry(trx, entry, ctx.clock.now(), inFileSince(replayed !== undefined));
        return async () => { await appendPending(ctx.clock.now()); };
      },
    });

    r.retentionTask({
      name: 'backups',
      async run(at, actorKeyId) {
        const archivesMoved = await archives.repairPending();
        const archivesDestroyed = await archives.destroyExpired(at, actorKeyId);
        const { pruned } = await pruneDatabaseBackups(ctx, at, actorKeyId);
        // Confirmations made before the journal recorded them in their transaction (older releases).
        const confirmationsJournaled = await journal.journalConfirmations(ctx.db, ctx.config, await journal.syncConfirmations(ctx.db), at);
        const journalRepaired = await appendPending(at);
        return { archivesDestroyed, archivesMoved, backupFilesPruned: pruned.length, journalRepaired, confirmationsJournaled };
      },
    });
  },
};
