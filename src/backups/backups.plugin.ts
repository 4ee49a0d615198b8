import type { Ctx } from '../context.ts';
import type { Db } from '../db/database.ts';
import type { DeletionStep } from '../erasure/deletion.service.ts';
import type { ServicesCore } from '../services.ts';
import { createArchiveService, registerArchiveRoutes } from './archive.service.ts';
import { registerDatabaseBackupRoutes } from './database-backup.routes.ts';
import { pruneDatabaseBackups } from './database-backup.ts';
import * as journal from './erasure-journal.ts';
import type { ConfirmationLike } from './erasure-journal.ts';
import { backupLocationProblem } from '../deployment/guards.ts';
import { crashPoint } from '../deployment/crash-points.ts';
import { AppError } from '../http/errors.ts';
import { createSubjectExport, registerSubjectExportRoute } from './subject-export.ts';

/** What other domains may call to journal a confirmation (s.shared.erasureJournal). */
export interface ErasureJournalApi {
  /**
   * Records a deletion-case confirmation inside the confirmation's own transaction; call the
   * returned function after commit (it appends pending entries to the journal file).
   */
  recordConfirmation(trx: Db, input: {
    caseId: string; applicationId: string; customerId: string; actorKeyId: string | null; at: Date;
  }): Promise<() => Promise<void>>;
}

/** Pre-deletion archives, database backups, restore with erasure replay. */
export function plugBackups(ctx: Ctx, s: ServicesCore): void {
  const subjectExport = createSubjectExport({ blobs: ctx.blobs, now: () => ctx.clock.now() });
  s.shared.subjectExport = subjectExport;
  s.extraRoutes.push((app) => registerSubjectExportRoute(app, ctx, subjectExport));

  const archives = createArchiveService(ctx, subjectExport);
  s.shared.archives = archives;
  // First of all steps: the archive must see the records before any other step (redaction) touches them.
  s.deletionSteps.unshift(archives.step);
  s.extraRoutes.push((app) => registerArchiveRoutes(app, archives));
  s.extraRoutes.push((app) => registerDatabaseBackupRoutes(app, ctx, archives));

  const journalStep: DeletionStep = {
    name: 'erasure-journal',
    phase: 'after',
    async run(trx, c) {
      // No deletion without its journal entry: refused (503, rolled back) while the shared location is unreachable.
      const problem = await backupLocationProblem(trx, ctx.config);
      if (problem) throw new AppError('backup_location_unavailable', `${problem}; the customer was not deleted, retry once it is back`);
      const entry = journal.newEntry({
        kind: 'deletion', customerId: c.customer.id, caseId: null, applicationId: null, actorKeyId: c.actorKeyId, at: c.at,
        ...(journal.replaying.has(c.customer.id) ? { id: journal.replaying.get(c.customer.id)! } : {}),
      });
      await journal.insertEntry(trx, entry, ctx.clock.now());
      return entry;
    },
    async afterCommit() {
      crashPoint('delete.after-commit');
      // The entry is pending in the table; a crash before this line is repaired at start, by the
      // retention job and by a restore (appendPending / reconcileFile).
      await journal.appendPending(ctx.db, ctx.config, ctx.clock.now());
    },
  };
  s.deletionSteps.push(journalStep);

  const api: ErasureJournalApi = {
    async recordConfirmation(trx, input) {
      const entry = journal.newEntry({ kind: 'confirmation', ...input });
      await journal.insertEntry(trx, entry, ctx.clock.now());
      return async () => { await journal.appendPending(ctx.db, ctx.config, ctx.clock.now()); };
    },
  };
  s.shared.erasureJournal = api;

  // Confirmations: the notifications domain exposes its service as s.shared.cases; its routes
  // call cases.confirm at request time, so wrapping it here journals every confirmation. A
  // confirmation that slips past (crash between its commit and this write) is still pulled from
  // deletion_confirmations by the restore and the retention job (journal.syncConfirmations).
  const cases = s.shared.cases as { confirm?: (...args: never[]) => Promise<ConfirmationLike> } | undefined;
  if (cases?.confirm) {
    const confirm = cases.confirm;
    cases.confirm = (async (...args: never[]) => {
      const view = await confirm(...args);
      await journal.journalConfirmations(ctx.db, ctx.config, [journal.confirmationEntry(view)], ctx.clock.now())
        .catch((err: Error) => ctx.log.warn({ err: err.message }, 'confirmation not journaled yet; the retention job repairs it'));
      return view;
    }) as typeof cases.confirm;
  }

  s.retentionTasks.push({
    name: 'backups',
    async run(at, actorKeyId) {
      const archivesMoved = await archives.repairPending();
      const archivesDestroyed = await archives.destroyExpired(at, actorKeyId);
      const { pruned } = await pruneDatabaseBackups(ctx, at, actorKeyId);
      const confirmationsJournaled = await journal.journalConfirmations(ctx.db, ctx.config, await journal.syncConfirmations(ctx.db), at);
      const journalRepaired = await journal.appendPending(ctx.db, ctx.config, at);
      return { archivesDestroyed, archivesMoved, backupFilesPruned: pruned.length, journalRepaired, confirmationsJournaled };
    },
  });
}
