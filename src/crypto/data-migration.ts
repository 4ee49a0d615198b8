import { appendAudit } from '../audit/audit.repo.ts';
import { resealLegacyArchive } from '../backups/archive.service.ts';
import type { Ctx } from '../context.ts';
import { externalIdIndex } from '../customers/customers.repo.ts';
import { createPhotoStore } from '../customers/photo-store.ts';
import type { Db } from '../db/database.ts';
import { DATA_MAP, encryptedColumns, toCamel } from '../erasure/data-map.ts';
import * as repo from './data-migration.repo.ts';

/**
 * Encrypts what a database of an earlier release holds in clear, in resumable batches while
 * serving: customer by customer (ordered by id, a cursor in crypto_state), every encrypted column
 * of the customer's rows, its activity details, its stored responses and its profile photo; then
 * re-seals the pre-deletion archives under the current epoch key; then removes the plaintext the
 * tables' files still hold in dead row versions (VACUUM FULL rewrites them). Redacted customers
 * hold only masks and kept values, written in clear on purpose: they are left as they are.
 * Several instances may run it: each batch locks the crypto_state row.
 */
export const MIGRATION_BATCH = 100;

const PERSONAL_TABLES = Object.keys(DATA_MAP).filter((t) => t !== 'customers' && t !== 'idempotency_keys'
  && 'customer_id' in DATA_MAP[t]!.columns && encryptedColumns(t).length > 0);

export interface MigrationProgress { customers: number; photos: number; archives: number; done: boolean }

export const migrationDone = repo.migrationDone;

function unsealed(fc: Ctx['crypto'], table: string, row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [column, enc] of encryptedColumns(table)) {
    const k = toCamel(column);
    const v = row[k];
    if (v === null || v === undefined) continue;
    if (enc === 'json-values') {
      const values = Object.values(v as Record<string, unknown>);
      if (values.length > 0 && !values.some((x) => fc.isSealed(x))) out[k] = v;
    } else if (!fc.isSealed(v)) out[k] = v;
  }
  return out;
}

/** One batch of customers; returns what it did. Call until `done`. */
export async function migrateBatch(ctx: Ctx, limit = MIGRATION_BATCH): Promise<MigrationProgress> {
  const { db, crypto: fc } = ctx;
  const photos = createPhotoStore(ctx.blobs, fc);
  const progress: MigrationProgress = { customers: 0, photos: 0, archives: 0, done: false };
  const at = ctx.clock.now();
  const finished = await db.transaction().execute(async (trx) => {
    const state = await repo.lockCryptoStateRow(trx);
    if (state.migrationDoneAt) return true;
    const customers = await repo.lockCustomersAfter(trx, state.migrationCursor, limit);
    for (const c of customers) {
      progress.customers++;
      if (c.redactedAt) continue;
      const dek = await fc.keyFor(trx, c.id, at);
      const set: Record<string, unknown> = fc.encryptRow('customers', unsealed(fc, 'customers', c), c.id, dek);
      const plain = fc.decryptRow('customers', c, c.id, dek);
      set.emailBidx = fc.blindIndex(plain.email);
      set.externalIdBidx = externalIdIndex(fc, plain.externalId);
      if (c.profilePhotoKey) {
        const moved = await photos.encryptExisting(trx, c.id, c.profilePhotoKey, at);
        // The clear bytes go in this transaction (stored_files), with the row pointing at the sealed ones.
        if (moved) { set.profilePhotoKey = moved; await ctx.blobs.delete(c.profilePhotoKey, trx); progress.photos++; }
      }
      await repo.updateCustomerColumns(trx, c.id, set);
      for (const table of PERSONAL_TABLES) {
        const rows = await repo.personalRowsOf(trx, table, encryptedColumns(table).map(([col]) => col), c.id);
        for (const r of rows) {
          const todo = unsealed(fc, table, r);
          if (Object.keys(todo).length === 0) continue;
          const enc = fc.encryptRow(table, todo, String(r.id), dek);
          await repo.updatePersonalRow(trx, table, r.id, enc);
        }
      }
      const stored = await repo.storedResponsesOf(trx, c.id);
      for (const r of stored) {
        if (r.responseBody === null || fc.isSealed(r.responseBody)) continue;
        const enc = fc.encryptRow('idempotency_keys', { responseBody: JSON.stringify(r.responseBody) }, `${r.apiKeyId}/${r.key}`, dek);
        await repo.setStoredResponse(trx, r.apiKeyId, r.key, enc.responseBody as string);
      }
    }
    if (customers.length > 0) {
      await repo.setMigrationCursor(trx, customers.at(-1)!.id);
    }
    return customers.length < limit;
  });
  if (!finished) return progress;

  // Archives of release 1: re-sealed under the current epoch key.
  const legacy = await repo.legacyArchiveIds(db);
  for (const id of legacy) if (await resealLegacyArchive(ctx, id)) progress.archives++;
  const marked = await db.transaction().execute(async (trx) => {
    if (!(await repo.markMigrationDone(trx, at))) return false;
    await appendAudit(trx, {
      type: 'crypto.data_encrypted', actorKeyId: null, subjectType: null, subjectId: null, at,
      data: { archivesResealed: progress.archives },
    });
    return true;
  });
  // Dead row versions still hold the plaintext in the tables' files: rewrite the files.
  if (marked) await dropPlaintext(db);
  progress.done = true;
  return progress;
}

/** VACUUM FULL of every table that held personal data in clear (photo bytes included): new files, the old ones removed. */
export async function dropPlaintext(db: Db): Promise<void> {
  // stored_files: the photos' clear bytes of release 1 (deleted by the batches) and the archives sealed under the backup key.
  for (const t of ['customers', ...PERSONAL_TABLES, 'idempotency_keys', 'stored_files', 'backup_archives']) {
    await repo.vacuumFull(db, t);
  }
}

/** Runs every batch until done (a background task at start; tests call it directly). */
export async function migrateAll(ctx: Ctx, limit = MIGRATION_BATCH): Promise<MigrationProgress> {
  const total: MigrationProgress = { customers: 0, photos: 0, archives: 0, done: false };
  for (;;) {
    const p = await migrateBatch(ctx, limit);
    total.customers += p.customers; total.photos += p.photos; total.archives += p.archives;
    if (p.done) { total.done = true; return total; }
  }
}
