import type { Db } from '../db/database.ts';
import * as m0005 from '../db/migrations/0005-backups.ts';
import type { DeletionStep, DomainPlugin } from '../plugin/registry.ts';
import { SETTINGS_SECTIONS } from '../settings/settings.repo.ts';
import { backupCli } from './backups.cli.ts';
import { createArchiveService, registerArchiveRoutes, type ArchiveService } from './archive.service.ts';
import { pruneDatabaseBackups } from './database-backup.ts';
import * as journal from './erasure-journal.ts';

/** What the backups domain offers others: the erasure journal and the sealed archives. */
export interface ErasureJournalPort {
  /**
   * Records a deletion-case confirmation inside the confirmation's own transaction (the entry
   * reuses the confirmation's id); call the returned function after commit: it appends the entry
   * to the journal file outside the database.
   */
  recordConfirmation(trx: Db, input: {
    confirmationId: string; caseId: string; applicationId: string; customerId: string; actorKeyId: string | null; at: Date;
    /** What the application did (journaled so a restore's replay keeps it). */
    outcome: 'deleted' | 'no_data_held';
  }): Promise<() => void>;
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

    const journalStep: DeletionStep<journal.JournalEntry> = {
      name: 'erasure-journal',
      phase: 'after',
      // Last: it records the deletion once every other step has done its part.
      order: 90,
      async run(trx, c) {
        const entry = journal.newEntry({
          kind: 'deletion', customerId: c.customer.id, caseId: null, applicationId: null, actorKeyId: c.actorKeyId, at: c.at,
          ...(journal.replaying.has(c.customer.id) ? { id: journal.replaying.get(c.customer.id)! } : {}),
        });
        await journal.insertEntry(trx, entry, ctx.clock.now());
        return entry;
      },
      async afterCommit(_c, entry) {
        // A crash before this line is repaired from the table (reconcileFile: retention job, restore).
        journal.appendToFile(ctx.config, [entry]);
      },
    };
    r.deletionStep(journalStep);

    r.provide('erasureJournal', {
      async recordConfirmation(trx, input) {
        const { confirmationId, ...rest } = input;
        const entry = journal.newEntry({ kind: 'confirmation', id: confirmationId, ...rest });
        await journal.insertEntry(trx, entry, ctx.clock.now());
        return () => journal.appendToFile(ctx.config, [entry]);
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
        const journalRepaired = await journal.reconcileFile(ctx.db, ctx.config);
        return { archivesDestroyed, archivesMoved, backupFilesPruned: pruned.length, journalRepaired, confirmationsJournaled };
      },
    });
  },
};
