import { crashPoint } from '../deployment/crash-points.ts';
import { appendAudit, reanchorIn } from '../audit/audit.repo.ts';
import { auditHeadOf, checkpointAudit, recordFork } from '../audit/checkpoints.ts';
import type { Principal } from '../auth/api-keys.ts';
import type { Ctx } from '../context.ts';
import { AppError } from '../http/errors.ts';
import { createDeletionService } from '../erasure/deletion.service.ts';
import { customerRef } from '../erasure/pseudonym.ts';
import { createRecordErasure } from '../erasure/record-erasure.ts';
import { COLLECTIONS } from '../customers/collections.ts';
import type { Registry } from '../plugin/registry.ts';
import { BackupIntegrityError } from './crypto.ts';
import { SKIP_TABLES, readBackupLines, verifyBackup, type BackupHeader } from './database-backup.ts';
import * as journal from './erasure-journal.ts';
import * as repo from './restore.repo.ts';
import { raw } from './restore.repo.ts';
const BATCH_ROWS = 500;
const BATCH_BYTES = 4 * 1024 * 1024;

export interface ReplayResult { deletionsReplayed: number; recordsReplayed: number; confirmationsReplayed: number; confirmationsUnapplied: number; journalled: number }

/**
 * Re-applies every journaled erasure the database does not know about (its id is missing from
 * the `erasure_journal` table): deletions through the real deletion service (blockers bypassed:
 * the deletion already happened once; redaction and every other step included), dated at the
 * original deletion time; confirmations through the notifications domain. Audited.
 */
export async function replayErasures(ctx: Ctx, registry: Registry, entries: journal.JournalEntry[], actorKeyId: string | null = null): Promise<ReplayResult> {
  const result: ReplayResult = { deletionsReplayed: 0, recordsReplayed: 0, confirmationsReplayed: 0, confirmationsUnapplied: 0, journalled: 0 };
  const byId = new Map(entries.map((e) => [e.id, e]));
  const present = await journal.presentIds(ctx.db, [...byId.keys()]);
  const todo = [...byId.values()].filter((e) => !present.has(e.id))
    // Deletions before confirmations of the same instant; otherwise in time order.
    .sort((a, b) => a.at.localeCompare(b.at) || (a.kind === b.kind ? 0 : a.kind === 'deletion' ? -1 : b.kind === 'deletion' ? 1 : 0));
  if (todo.length === 0) return result;
  const replayedCustomers: string[] = [];
  for (const e of todo) {
    const at = new Date(e.at);
    if (e.kind === 'record') {
      // One record removed on its own: removed again through the same code (soft delete, redaction,
      // stored responses, journal entry with the original id). Gone already (customer deleted): nothing to do.
      const def = COLLECTIONS.find((c) => c.sqlTable === e.recordTable);
      if (def && e.recordId) {
        const erasure = createRecordErasure({ ...ctx, clock: { now: () => at } }, { journal: () => registry.port('erasureJournal') });
        journal.replaying.set(e.recordId, e.id);
        try {
          await erasure.erase(e.actorKeyId, def, e.customerId, e.recordId);
          result.recordsReplayed++;
          continue;
        } catch (error) {
          if (!(error instanceof AppError && error.code === 'not_found')) throw error;
        } finally {
          journal.replaying.delete(e.recordId);
        }
      }
    } else if (e.kind === 'deletion') {
      const alive = await repo.isCustomerAlive(ctx.db, e.customerId);
      if (alive) {
        // The blockers were cleared before the original deletion (it happened): lift the hold and
        // unlink still-pending transactions exactly as the deletion would (status left as restored).
        await ctx.db.transaction().execute(async (trx) => {
          await repo.clearDeletionBlockers(trx, e.customerId, customerRef(ctx.secrets.pseudonymKey, e.customerId), at);
        });
        const deletion = createDeletionService({ ...ctx, clock: { now: () => at } }, () => registry.deletionSteps);
        const principal = { keyId: e.actorKeyId, kind: 'operator', applicationIds: [] } as unknown as Principal;
        journal.replaying.set(e.customerId, e.id);
        try {
          await deletion.delete(principal, e.customerId);
          result.deletionsReplayed++;
          replayedCustomers.push(e.customerId);
          continue;
        } catch (error) {
          // Another instance replaying the same journal got there first: the customer is deleted.
          if (!(error instanceof AppError && error.code === 'not_found')) throw error;
        } finally {
          journal.replaying.delete(e.customerId);
        }
      }
    } else {
      const outcome = await ctx.db.transaction().execute(async (trx) => {
        const { outcome: o, caseId } = await journal.reapplyConfirmation(trx, e);
        if (o === 'applied') {
          await appendAudit(trx, {
            type: 'deletion_case.confirmed', actorKeyId: e.actorKeyId, subjectType: 'deletion_case', subjectId: caseId, at,
            data: { confirmationId: e.id, applicationId: e.applicationId, customerId: e.customerId, replayed: true },
          });
        }
        return o;
      });
      if (outcome === 'no_case') result.confirmationsUnapplied++;
      else result.confirmationsReplayed++;
    }
    // Read from the journal file (or put there by the restore's reconcileFile): recorded as already in it.
    await journal.insertEntry(ctx.db, e, ctx.clock.now(), ctx.clock.now());
    result.journalled++;
  }
  await ctx.db.transaction().execute((trx) => appendAudit(trx, {
    type: 'backup.erasures_replayed', actorKeyId, subjectType: null, subjectId: null, at: ctx.clock.now(),
    data: { ...result, customerIds: replayedCustomers },
  }));
  return result;
}

/** At every start, before serving: replays journaled erasures the database lacks (after a restore by any means). */
export async function replayAtStart(ctx: Ctx, makeRegistry: () => Registry): Promise<ReplayResult | null> {
  const entries = journal.readFile(ctx.config);
  if (entries.length === 0) return null;
  const present = await journal.presentIds(ctx.db, entries.map((e) => e.id));
  if (entries.every((e) => present.has(e.id))) return null;
  const result = await replayErasures(ctx, makeRegistry(), entries);
  ctx.log.warn({ ...result }, 'replayed erasures recorded after the database was last restored');
  return result;
}

export interface RestoreResult { header: BackupHeader; rows: Record<string, number>; replay: ReplayResult; orphanArchivesRemoved: number }

/**
 * Restores a database backup: verifies it completely (nothing is changed if any byte was
 * altered), replaces every table's contents in one transaction, appends a `backup.restored`
 * audit event to the restored chain, then replays the erasures recorded after the backup.
 * The server must not be serving this database meanwhile (stop it; PGlite allows one process).
 */
export async function restoreDatabaseBackup(ctx: Ctx, registry: Registry, file: string, actorKeyId: string | null = null): Promise<RestoreResult> {
  const { header, rows } = await verifyBackup(file, ctx.secrets.backupKey, ctx.secrets.fingerprint);
  const knownNames = new Set(await repo.appliedMigrationNames(ctx.db));
  const unknown = header.migrations.filter((m) => !knownNames.has(m));
  if (unknown.length) throw new BackupIntegrityError(`backup needs migrations this version does not have: ${unknown.join(', ')}`);

  // The journal before the restore, from both places: nothing recorded so far may be forgotten.
  const before = [...journal.readFile(ctx.config), ...await journal.readTable(ctx.db), ...await journal.syncConfirmations(ctx.db)];
  await journal.reconcileFile(ctx.db, ctx.config, before);

  const at = ctx.clock.now();
  // The head this restore replaces, anchored first: the fork line below names it (issue 17).
  const checkpoints = { db: ctx.db, config: ctx.config, key: ctx.secrets.auditKey, now: () => ctx.clock.now() };
  await checkpointAudit(checkpoints);
  const replaced = await auditHeadOf(ctx.db);
  let restored: { seq: number; hash: string } | null = null;
  await ctx.db.transaction().execute(async (trx) => {
    const r = raw(trx);
    // audit_events refuses TRUNCATE except in a documented restore (migration 0006): this transaction only.
    await repo.setAuditRestore(r, true);
    const tables = (await repo.baseTableNames(r)).filter((n) => !SKIP_TABLES.has(n));
    const missing = header.tables.filter((t) => !tables.includes(t));
    if (missing.length) throw new BackupIntegrityError(`backup holds tables this database lacks: ${missing.join(', ')}`);
    const columns = await repo.columnsByTable(r);
    // This deployment's own identity (key fingerprint, backup-location marker) survives the restore.
    const deployment = await repo.readDeploymentRow(r);
    // Likewise the keyring this database is bound to (crypto_state.keyring_id, checked at start).
    const keyringId = await repo.readKeyringBinding(r);
    // Every table at once: TRUNCATE of the whole set is foreign-key safe.
    // A backup from before migration 0007 holds no stored files (they were files on disk then):
    // the current ones stay, and those no restored row points at are swept after the restore.
    const truncated = tables.filter((t) => t !== 'stored_files' || header.tables.includes('stored_files'));
    if (truncated.length) await repo.truncateTables(r, truncated);

    let table: string | null = null;
    let batch: string[] = [];
    let bytes = 0;
    const counts: Record<string, number> = {};
    const flush = async () => {
      if (!table || batch.length === 0) return;
      const have = columns.get(table)!;
      // Columns present in both: a column added by a later migration takes its default.
      const cols = Object.keys(JSON.parse(batch[0]!) as Record<string, unknown>).filter((c) => have.has(c));
      await repo.insertJsonRows(r, table, cols, batch);
      counts[table] = (counts[table] ?? 0) + batch.length;
      batch = [];
      bytes = 0;
    };
    let ended = false;
    for await (const line of readBackupLines(file, ctx.secrets.backupKey)) {
      if (!line) continue;
      if (line.startsWith('[')) {
        await flush();
        const [kind, value] = JSON.parse(line) as [string, unknown];
        if (kind === 'table') table = String(value);
        if (kind === 'end') { ended = true; table = null; }
        continue;
      }
      batch.push(line);
      bytes += line.length;
      if (batch.length >= BATCH_ROWS || bytes >= BATCH_BYTES) await flush();
    }
    await flush();
    const own = deployment?.rows[0];
    if (own) {
      await repo.replaceDeploymentRow(r, own);
    }
    // A backup from before migration 0010 holds no crypto state: its personal data is in clear, so
    // the data migration runs again (cursor and done mark reset); the keyring binding is this deployment's.
    await repo.restoreKeyringBinding(r, keyringId);
    crashPoint('restore'); // test-only (NODE_ENV=test): SIGKILL with every table replaced but not committed
    if (!ended) throw new BackupIntegrityError('backup has no end marker');
    for (const [t, n] of Object.entries(rows)) {
      if ((counts[t] ?? 0) !== n) throw new BackupIntegrityError(`restored ${counts[t] ?? 0} rows of ${t}, backup says ${n}`);
    }
    // Identity and serial columns continue after the restored rows.
    for (const s of await repo.serialColumns(r)) {
      if (!s.seq || SKIP_TABLES.has(s.table_name)) continue;
      await repo.resetSequence(r, { ...s, seq: s.seq });
    }
    restored = await auditHeadOf(trx);
    await repo.setAuditRestore(r, false);
    // A backup written before migration 0006 has no chain state: its chain is release 1's, unkeyed; re-anchor it.
    await repo.ensureAuditChainState(r);
    await reanchorIn(trx, at);
    // The restore appends to the restored chain; it never rewrites it.
    await appendAudit(trx, {
      type: 'backup.restored', actorKeyId, subjectType: 'backup', subjectId: header.id, at,
      data: { backupCreatedAt: header.createdAt, databaseKind: header.databaseKind, journalSeq: header.journal.seq,
        rows: Object.values(counts).reduce((a, b) => a + b, 0) },
    });
  });

  // A recorded fork: verify reports the events after the backup's head as lost to this restore, not truncated.
  await recordFork(checkpoints, { replaced, restored, backupId: header.id });
  // A backup without key epochs (before migration 0010): the current epoch starts now, before replay needs keys.
  await ctx.crypto.keys.ensureEpoch(ctx.db, ctx.clock.now());
  await checkpointAudit(checkpoints);

  // Archive files superseded by the restore (their rows are gone) are removed; replayed
  // deletions seal fresh archives from the restored records.
  const archives = registry.port('archives');
  const orphanArchivesRemoved = await archives.sweepOrphanBlobs();
  // Likewise profile photos uploaded after the backup: no restored row points at them, and a
  // file nobody references must not outlive its customer's records.
  await sweepOrphanPhotos(ctx);
  const replay = await replayErasures(ctx, registry, before, actorKeyId);
  return { header, rows, replay, orphanArchivesRemoved };
}

async function sweepOrphanPhotos(ctx: Ctx): Promise<number> {
  const keys = await ctx.blobs.list('photos');
  const used = new Set<string>();
  for (let i = 0; i < keys.length; i += 5000) {
    for (const k of await repo.photoKeysInUse(ctx.db, keys.slice(i, i + 5000))) used.add(k);
  }
  let removed = 0;
  for (const k of keys) if (!used.has(k)) { await ctx.blobs.delete(k); removed++; }
  return removed;
}
