import crypto from 'node:crypto';
import { Type } from 'typebox';
import type { FastifyInstance } from 'fastify';
import { appendAudit } from '../audit/audit.repo.ts';
import { DAY_MS } from '../clock.ts';
import type { Ctx } from '../context.ts';
import type { Db } from '../db/database.ts';
import type { DeletionStep } from '../erasure/deletion.service.ts';
import { AppError, notFound } from '../http/errors.ts';
import { paginate, type PageQuery } from '../http/pagination.ts';
import { ListOf, PageQuerySchema, Timestamp, Uuid, errors } from '../http/schemas.ts';
import { open, seal } from './crypto.ts';
import type { SubjectExport } from './subject-export.ts';

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

export async function retentionDays(db: Db): Promise<number> {
  const s = await db.selectFrom('settings').select('backupRetentionDays').where('id', '=', 1).executeTakeFirst();
  return s?.backupRetentionDays ?? 30;
}

export function createArchiveService(ctx: Ctx, subjectExport: SubjectExport) {
  const { db, blobs } = ctx;

  /** Moves an archive's ciphertext from its row (older releases) into the stored files, in one transaction. */
  async function moveToBlob(id: string): Promise<boolean> {
    return db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('backupArchives').select(['sealed', 'blobKey', 'destroyedAt']).where('id', '=', id)
        .forUpdate().executeTakeFirst();
      if (!row?.sealed || row.blobKey || row.destroyedAt) return false;
      const key = await blobs.put(Buffer.from(row.sealed), ARCHIVE_PREFIX, trx);
      await trx.updateTable('backupArchives').set({ blobKey: key, sealed: null }).where('id', '=', id).execute();
      return true;
    });
  }

  const step: DeletionStep = {
    // The deletion service records `backup.id` on the receipt (deletions.backup_id).
    name: 'backup',
    phase: 'before',
    async run(trx, c) {
      const doc = await subjectExport(trx, c.customer.id, { includePhotoData: true, at: c.at });
      const id = crypto.randomUUID();
      const sealed = seal(ctx.secrets.backupKey, Buffer.from(JSON.stringify(doc)), archiveContext(id));
      const expiresAt = new Date(c.at.getTime() + (await retentionDays(trx)) * DAY_MS);
      const blobKey = await blobs.put(sealed, ARCHIVE_PREFIX, trx);
      await trx.insertInto('backupArchives').values({
        id, customerId: c.customer.id, createdAt: c.at, expiresAt, blobKey, sealed: null,
        sizeBytes: sealed.length, keyFingerprint: ctx.secrets.fingerprint, destroyedAt: null,
      }).execute();
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
      const rows = await db.selectFrom('backupArchives').select('id')
        .where('sealed', 'is not', null).where('blobKey', 'is', null).execute();
      let moved = 0;
      for (const r of rows) if (await moveToBlob(r.id)) moved++;
      return moved;
    },

    list(filter: { customerId?: string }, page: PageQuery) {
      let q = db.selectFrom('backupArchives').select(['id', 'customerId', 'createdAt', 'expiresAt'])
        .where('destroyedAt', 'is', null);
      if (filter.customerId) q = q.where('customerId', '=', filter.customerId);
      return paginate(q, 'backup_archives', page);
    },

    /** Decrypts an archive (CLI only: the API never returns it). Audited. */
    async open(id: string, actorKeyId: string | null = null): Promise<Record<string, unknown>> {
      if (!/^[0-9a-f-]{36}$/i.test(id)) throw new AppError('validation_failed', `"${id}" is not an archive id`);
      const row = await db.selectFrom('backupArchives').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw notFound('Archive');
      if (row.destroyedAt) throw new AppError('not_found', `Archive ${id} was destroyed at ${new Date(row.destroyedAt).toISOString()} (retention)`);
      const sealed = row.sealed ? Buffer.from(row.sealed) : row.blobKey ? await blobs.get(row.blobKey) : null;
      if (!sealed) throw new AppError('not_found', `Archive ${id}: the sealed file is missing from the stored files`);
      const doc = JSON.parse(open(ctx.secrets.backupKey, sealed, archiveContext(id)).toString('utf8')) as Record<string, unknown>;
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
      const rows = await db.selectFrom('backupArchives').select(['id', 'customerId', 'blobKey'])
        .where('destroyedAt', 'is', null)
        .where((eb) => eb.or([eb('expiresAt', '<=', at), eb('createdAt', '<=', cutoff)]))
        .orderBy('createdAt').execute();
      let destroyed = 0;
      for (const r of rows) {
        await db.transaction().execute(async (trx) => {
          const u = await trx.updateTable('backupArchives').set({ destroyedAt: at, blobKey: null, sealed: null })
            .where('id', '=', r.id).where('destroyedAt', 'is', null).executeTakeFirst();
          if (Number(u.numUpdatedRows) === 0) return; // another instance got there first
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
      const used = new Set<string>();
      for (let i = 0; i < keys.length; i += 5000) {
        const rows = await db.selectFrom('backupArchives').select('blobKey').where('blobKey', 'in', keys.slice(i, i + 5000)).execute();
        for (const r of rows) if (r.blobKey) used.add(r.blobKey);
      }
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

export function registerArchiveRoutes(app: FastifyInstance, archives: ArchiveService) {
  app.get('/v1/backups', {
    schema: {
      tags: ['backups'],
      summary: 'Sealed pre-deletion archives (metadata only; open one with `lethe backup open <id>`)',
      querystring: Type.Object({ customerId: Type.Optional(Uuid), ...PageQuerySchema }, { additionalProperties: false }),
      response: { 200: ListOf(ArchiveSchema), ...errors() },
    },
  }, async (request) => {
    const q = request.query as { customerId?: string; limit?: number; cursor?: string };
    return archives.list(q.customerId ? { customerId: q.customerId } : {}, q);
  });
}
