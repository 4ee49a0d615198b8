import crypto from 'node:crypto';
import { Type } from 'typebox';
import { appendAudit } from '../audit/audit.repo.ts';
import { DAY_MS } from '../clock.ts';
import type { Ctx } from '../context.ts';
import type { Db } from '../db/database.ts';
import type { DeletionStep } from '../plugin/registry.ts';
import { AppError, notFound } from '../http/errors.ts';
import { type PageQuery } from '../http/pagination.ts';
import { ListOf, PageQuerySchema, Timestamp, Uuid, errors } from '../http/schemas.ts';
import { readSettingsSection } from '../settings/settings.repo.ts';
import * as repo from './archive.repo.ts';
import { open, seal } from './crypto.ts';
import type { PrefetchedLists, SubjectExport } from '../customers/subject-export.ts';
import type { TypedApp } from '../plugin/registry.ts';

/**
 * Sealed pre-deletion archives. At DELETE, inside the deletion's transaction and before the
 * cascade (so it still sees the living records), the customer's data-subject export is sealed
 * with AES-256-GCM and stored (stored_files, in the database) in that same transaction. So a
 * rolled-back DELETE leaves neither a row nor a file, and a committed DELETE always has its
 * archive. Rows written by an older release may still hold the ciphertext in `sealed` (moved
 * after commit then); `repairPending` moves them, `backup open` reads either place.
 */
export const ARCHIVE_PREFIX = 'archives';
const archiveContext = (id: string) => `lethe-archive:${id}`;

/**
 * The key an archive is sealed under: the key-epoch key current at its creation (crypto-shredding:
 * once that epoch is destroyed, no one can open it), or, for archives of release 1 not yet
 * re-sealed, the master-derived backup key.
 */
function archiveKey(ctx: Ctx, epochId: string | null): Buffer {
  if (!epochId) return ctx.secrets.backupKey;
  try { return ctx.crypto.keys.keyring.epochKey(epochId); } catch {
    throw new AppError('not_found', `The key epoch that sealed this archive (${epochId}) was destroyed: the archive can no longer be opened`);
  }
}

/**
 * Re-seals a release-1 archive (backup key) under the current epoch key; true when done. One
 * transaction: the new ciphertext goes into stored_files, the row points at it, the old file
 * (or in-row ciphertext) goes.
 */
export async function resealLegacyArchive(ctx: Ctx, id: string): Promise<boolean> {
  const { db, blobs } = ctx;
  return db.transaction().execute(async (trx) => {
    const row = await repo.findSealedForUpdate(trx, id);
    if (!row || row.destroyedAt || row.keyEpochId) return false;
    const sealed = row.sealed ? Buffer.from(row.sealed) : row.blobKey ? await blobs.get(row.blobKey, trx) : null;
    if (!sealed) return false;
    const plain = open(ctx.secrets.backupKey, sealed, archiveContext(id));
    const epoch = await ctx.crypto.keys.currentEpoch(trx);
    if (!epoch) return false;
    const resealed = seal(archiveKey(ctx, epoch.id), plain, archiveContext(id));
    const newKey = await blobs.put(resealed, ARCHIVE_PREFIX, trx);
    if (!await repo.markResealed(trx, id, epoch.id, newKey, resealed.length)) return false;
    if (row.blobKey) await blobs.delete(row.blobKey, trx);
    return true;
  });
}

/** The backups section of the settings (settings/settings.repo.ts): how long archives and backup files are kept. */
export async function retentionDays(db: Db): Promise<number> {
  return (await readSettingsSection(db, 'backups')).backupRetentionDays;
}

export function createArchiveService(ctx: Ctx, subjectExport: () => SubjectExport) {
  const { db, blobs } = ctx;

  /** Moves an archive's ciphertext from its row (older releases) into the stored files, in one transaction. */
  async function moveToBlob(id: string): Promise<boolean> {
    return db.transaction().execute(async (trx) => {
      const row = await repo.findSealedForUpdate(trx, id);
      if (!row?.sealed || row.blobKey || row.destroyedAt) return false;
      const key = await blobs.put(Buffer.from(row.sealed), ARCHIVE_PREFIX, trx);
      return repo.markMoved(trx, id, key);
    });
  }

  // Per deletion transaction: the export's lists its blocker statement read (prefetch → run).
  const prefetched = new WeakMap<Db, PrefetchedLists>();
  const step: DeletionStep<{ id: string; expiresAt: string }> = {
    name: 'backup',
    // First of all steps: the archive must see the records before any other step touches them.
    phase: 'before',
    order: 10,
    receipt: (archive) => ({ backupId: archive.id }),
    // The export's lists are read by the deletion's blocker statement (the customer is locked:
    // they are what this step would read itself).
    async prefetch(trx, customerId) {
      const read = await subjectExport().listsRead(trx, customerId);
      return { select: read.select, adopt: (value) => { prefetched.set(trx, read.parse(value)); } };
    },
    async run(trx, c) {
      // The customer row the deletion locked and decrypted (the cascade has not run yet).
      const doc = await subjectExport().text(trx, c.customer.id, { includePhotoData: true, at: c.at, customer: c.customer, lists: prefetched.get(trx) });
      const id = crypto.randomUUID();
      // Sealed under the current epoch key: openable while that epoch lives (at least backupRetentionDays), by no one after.
      const epoch = await ctx.crypto.keys.currentEpoch(trx);
      const keyEpochId = epoch?.id ?? null;
      const sealed = seal(archiveKey(ctx, keyEpochId), Buffer.from(doc), archiveContext(id));
      const expiresAt = new Date(c.at.getTime() + (await retentionDays(trx)) * DAY_MS);
      // The file and its row in one statement.
      await blobs.putWith(sealed, ARCHIVE_PREFIX, trx, (q, blobKey) => repo.archiveInsert(q, {
        id, customerId: c.customer.id, createdAt: c.at, expiresAt, blobKey, sizeBytes: sealed.length, keyFingerprint: ctx.secrets.fingerprint, keyEpochId,
      }));
      await appendAudit(trx, {
        type: 'backup.archive_created', actorKeyId: c.actorKeyId, subjectType: 'backup_archive', subjectId: id,
        at: c.at, data: { customerId: c.customer.id, expiresAt: expiresAt.toISOString() },
      });
      return { id, expiresAt: expiresAt.toISOString() };
    },
    async preview(pdb) {
      return { sealedArchive: true, retentionDays: await retentionDays(pdb) };
    },
  };

  return {
    step,
    moveToBlob,

    /** Archives still waiting in their row (crash between commit and move). */
    async repairPending(): Promise<number> {
      const rows = await repo.pendingMoves(db);
      let moved = 0;
      for (const r of rows) if (await moveToBlob(r.id)) moved++;
      return moved;
    },

    list(filter: { customerId?: string }, page: PageQuery) {
      return repo.listLive(db, filter, page);
    },

    /** Decrypts an archive (CLI only: the API never returns it). Audited. */
    async open(id: string, actorKeyId: string | null = null): Promise<Record<string, unknown>> {
      if (!/^[0-9a-f-]{36}$/i.test(id)) throw new AppError('validation_failed', `"${id}" is not an archive id`);
      const row = await repo.findArchive(db, id);
      if (!row) throw notFound('Archive');
      if (row.destroyedAt) throw new AppError('not_found', `Archive ${id} was destroyed at ${new Date(row.destroyedAt).toISOString()} (retention)`);
      const sealed = row.sealed ? Buffer.from(row.sealed) : row.blobKey ? await blobs.get(row.blobKey) : null;
      if (!sealed) throw new AppError('not_found', `Archive ${id}: the sealed file is missing from the stored files`);
      const doc = JSON.parse(open(archiveKey(ctx, row.keyEpochId), sealed, archiveContext(id)).toString('utf8')) as Record<string, unknown>;
      await db.transaction().execute((trx) => appendAudit(trx, {
        type: 'backup.archive_opened', actorKeyId, subjectType: 'backup_archive', subjectId: id,
        at: ctx.clock.now(), data: { customerId: row.customerId, via: 'cli' },
      }));
      return doc;
    },

    /**
     * Retention: destroys archives past their expiry (or older than the current retention
     * setting, if it was lowered): file first, then the row becomes a tombstone, audited.
     */
    async destroyExpired(at: Date, actorKeyId: string | null): Promise<number> {
      const days = await retentionDays(db);
      const cutoff = new Date(at.getTime() - days * DAY_MS);
      const rows = await repo.expired(db, at, cutoff);
      let destroyed = 0;
      for (const r of rows) {
        await db.transaction().execute(async (trx) => {
          if (!await repo.markDestroyed(trx, r.id, at)) return; // another instance got there first
          if (r.blobKey) await blobs.delete(r.blobKey, trx);
          destroyed++;
          await appendAudit(trx, {
            type: 'backup.archive_destroyed', actorKeyId, subjectType: 'backup_archive', subjectId: r.id, at,
            data: { customerId: r.customerId, reason: 'retention', retentionDays: days },
          });
        });
      }
      return destroyed;
    },

    /** Stored archive files no row points at (none arise today; kept as a repair after a restore). */
    async sweepOrphanBlobs(): Promise<number> {
      const keys = await blobs.list(ARCHIVE_PREFIX);
      if (keys.length === 0) return 0;
      const used = await repo.referencedBlobs(db, keys);
      let removed = 0;
      for (const k of keys) if (!used.has(k)) { await blobs.delete(k); removed++; }
      return removed;
    },
  };
}

export type ArchiveService = ReturnType<typeof createArchiveService>;

const ArchiveSchema = Type.Object({
  id: Uuid, customerId: Uuid, createdAt: Timestamp, expiresAt: Timestamp,
}, { additionalProperties: false });

export function registerArchiveRoutes(app: TypedApp, archives: ArchiveService) {
  app.get('/v1/backups', {
    config: { access: 'operator' },
    schema: { operationId: 'listBackups',
      tags: ['backups'],
      summary: 'Sealed pre-deletion archives (metadata only; open one with `lethe backup open <id>`)',
      querystring: Type.Object({ customerId: Type.Optional(Uuid), ...PageQuerySchema }, { additionalProperties: false }),
      response: { 200: ListOf(ArchiveSchema), ...errors() },
    },
  }, async (request) => {
    const q = request.query;
    return archives.list(q.customerId ? { customerId: q.customerId } : {}, q);
  });
}
