import crypto from 'node:crypto';
import { appendAudit } from '../audit/audit.repo.ts';
import { DAY_MS } from '../clock.ts';
import type { Db } from '../db/database.ts';
import { fromJson } from '../db/json-values.ts';
import * as repo from './customer-keys.repo.ts';
import { epochDays, retentionDaysOf } from './customer-keys.repo.ts';
import { openBytes, sealBytes } from './envelope.ts';
import { type Keyring, KeyUnavailableError } from './keyring.ts';

/**
 * Customer data keys and key epochs (SQL and key handling; the keys of epochs live in the keyring).
 *
 * - A customer's data key (32 random bytes) is stored wrapped by the current epoch key
 *   (customer_keys). Deleting that row destroys the key: every value encrypted under it is
 *   unreadable in every copy once the epoch keys that ever wrapped it are destroyed too.
 * - A new epoch starts every keyEpochDays; the re-wrap job moves keys to the current epoch in
 *   batches; an epoch out of use (not current, wrapping no key) for backupRetentionDays is destroyed.
 */
export class KeyringMismatchError extends Error {}

const wrapAad = (customerId: string, epochId: string) => `lethe-customer-key:${customerId}:${epochId}`;
export const REWRAP_BATCH = 500;

export interface EpochRow { id: string; seq: number; createdAt: Date }

/**
 * Data keys already read (or created) in a transaction, by customer: a DELETE needs the
 * customer's key in several steps (the customer row, the archive, the activity entry, the
 * redaction), one lookup is enough. Keys found are kept; that a customer has NO key is kept only
 * for customers the transaction holds FOR UPDATE (holdCustomer): every writer that creates a key
 * holds the customer row FOR SHARE first, so no other transaction can add one meanwhile.
 * destroyKeys drops them. Outside a transaction nothing is kept.
 */
interface TransactionMemo {
  keys: Map<string, Buffer | null>;
  held: Set<string>;
  /** The current epoch as read in this transaction (undefined: not read yet; null: none). */
  epoch?: EpochRow | null;
}
const memos = new WeakMap<Db, TransactionMemo>();
function memoOf(db: Db): TransactionMemo | null {
  if (!db.isTransaction) return null;
  let memo = memos.get(db);
  if (!memo) { memo = { keys: new Map(), held: new Set() }; memos.set(db, memo); }
  return memo;
}

export function createCustomerKeys(keyring: Keyring) {
  async function readCurrentEpoch(db: Db): Promise<EpochRow | undefined> {
    const r = await repo.findCurrentEpoch(db);
    const epoch = r ? { id: r.id, seq: r.seq, createdAt: new Date(r.createdAt) } : undefined;
    const memo = memoOf(db);
    if (memo) memo.epoch = epoch ?? null;
    return epoch;
  }

  /**
   * The current epoch; read once per transaction (a DELETE seals its archive and may wrap a key).
   * An epoch started meanwhile by another instance is seen by the next transaction, as if this one
   * had run a moment earlier; one started in this transaction (ensureEpoch) replaces it.
   */
  async function currentEpoch(db: Db): Promise<EpochRow | undefined> {
    const memo = memoOf(db);
    if (memo && memo.epoch !== undefined) return memo.epoch ?? undefined;
    return readCurrentEpoch(db);
  }

  const unwrap = (customerId: string, epochId: string, wrapped: Buffer) =>
    openBytes(keyring.epochKey(epochId), Buffer.from(wrapped), wrapAad(customerId, epochId));

  /**
   * Epoch key files the database does not know (their epochs were started after a backup that was
   * then restored): recorded as retired, so they go through the same out-of-use → destruction path
   * instead of living forever. A file younger than an hour may belong to an epoch being started now.
   */
  async function adoptOrphans(db: Db, at: Date) {
    const known = new Set(await repo.listEpochIds(db));
    for (const id of keyring.list()) {
      if (known.has(id)) continue;
      const written = keyring.writtenAt(id);
      if (written === null || Date.now() - written < 3_600_000) continue;
      await db.transaction().execute(async (trx) => {
        await repo.lockCryptoState(trx);
        const last = await repo.maxEpochSeq(trx);
        await repo.insertEpoch(trx, { id, seq: last + 1, createdAt: new Date(written), retiredAt: at }, true);
      });
    }
  }

  /** Unwraps the rows read for `ids` into `out` and the memo (absence too, for held customers). */
  function unwrapRows(memo: TransactionMemo | null, ids: string[], rows: Array<{ customerId: string; epochId: string; wrapped: Buffer }>,
    out: Map<string, Buffer>): Map<string, Buffer> {
    for (const r of rows) {
      try {
        const dek = unwrap(r.customerId, r.epochId, r.wrapped);
        out.set(r.customerId, dek);
        memo?.keys.set(r.customerId, dek);
      } catch (error) {
        // Wrapped by a destroyed epoch (a database restored from beyond retention): unreadable, as intended.
        if (!(error instanceof KeyUnavailableError)) throw error;
      }
    }
    if (memo) for (const id of ids) if (!out.has(id) && memo.held.has(id)) memo.keys.set(id, null);
    return out;
  }

  const api = {
    keyring,
    currentEpoch,

    /**
     * Binds the database to this keyring (first start) or checks it is the one the database was
     * bound to: instances sharing a database must share the keyring.
     */
    async checkKeyring(db: Db): Promise<void> {
      const bound = await repo.bindKeyring(db, keyring.id);
      if (bound !== keyring.id) {
        throw new KeyringMismatchError(`the keyring at ${keyring.dir} (id ${keyring.id}) is not this database's keyring (id ${bound}); ` +
          'point LETHE_KEYRING_DIR at the keyring shared by every instance of this database');
      }
      // Epochs this database still uses must be in the keyring (a wrong directory or master key fails here, at start).
      const used = await repo.listUsedEpochIds(db);
      for (const id of used) {
        if (!keyring.has(id)) throw new KeyringMismatchError(`epoch key ${id} is missing from the keyring at ${keyring.dir}`);
        keyring.epochKey(id);
      }
    },

    /** Starts the first epoch, or a new one when the current is keyEpochDays old. Race-safe across instances. */
    async ensureEpoch(db: Db, at: Date, actorKeyId: string | null = null): Promise<{ id: string; rotated: boolean }> {
      const cur = await currentEpoch(db);
      const days = await epochDays(db);
      if (cur && at.getTime() < cur.createdAt.getTime() + days * DAY_MS) return { id: cur.id, rotated: false };
      // Inside a caller's transaction (a first key written by a replayed erasure on a restored
      // release-1 database, which has no epoch yet) it runs in that transaction.
      const inTransaction = <T>(work: (trx: Db) => Promise<T>) => (db.isTransaction ? work(db) : db.transaction().execute(work));
      return inTransaction(async (trx) => {
        await repo.lockCryptoState(trx);
        // Read again under the lock (never the transaction's memo: another instance may have started one).
        const again = await readCurrentEpoch(trx);
        if (again && at.getTime() < again.createdAt.getTime() + days * DAY_MS) return { id: again.id, rotated: false };
        const id = crypto.randomUUID();
        // The key is durable in the keyring before any row can name it.
        keyring.createEpochKey(id);
        const last = await repo.maxEpochSeq(trx);
        await repo.insertEpoch(trx, { id, seq: last + 1, createdAt: at, retiredAt: null });
        if (again) await repo.setEpochStamp(trx, again.id, { retiredAt: at });
        const memo = memoOf(trx);
        if (memo) memo.epoch = { id, seq: last + 1, createdAt: at };
        await appendAudit(trx, {
          type: 'key_epoch.started', actorKeyId, subjectType: 'key_epoch', subjectId: id, at,
          data: { seq: last + 1, previousEpochId: again?.id ?? null },
        });
        return { id, rotated: true };
      });
    },

    /**
     * Declares that `trx` holds the customer's row FOR UPDATE (a DELETE): from now on in `trx`,
     * that the customer has no key is remembered too (see TransactionMemo).
     */
    holdCustomer(trx: Db, customerId: string): void {
      memoOf(trx)?.held.add(customerId);
    },

    /**
     * A data key read with another statement (the export's rows carry their customer's wrapped key):
     * undefined when its epoch was destroyed, as keysOf leaves such a customer out.
     */
    unwrapKey(customerId: string, epochId: string, wrapped: Buffer): Buffer | undefined {
      try {
        return unwrap(customerId, epochId, wrapped);
      } catch (error) {
        if (!(error instanceof KeyUnavailableError)) throw error;
        return undefined;
      }
    },

    /** Data keys of these customers (those that have one). */
    async keysOf(db: Db, customerIds: string[]): Promise<Map<string, Buffer>> {
      const out = new Map<string, Buffer>();
      const memo = memoOf(db);
      const ids: string[] = [];
      for (const id of new Set(customerIds)) {
        const dek = memo?.keys.get(id);
        if (dek) out.set(id, dek); else if (dek === undefined) ids.push(id);
      }
      if (ids.length === 0) return out;
      return unwrapRows(memo, ids, await repo.wrappedKeysOf(db, ids), out);
    },

    /** The current epoch as another statement of `trx` read it (repo.currentEpochJson), kept as currentEpoch would. */
    adoptEpoch(trx: Db, json: unknown): void {
      const memo = memoOf(trx);
      if (!memo || memo.epoch !== undefined) return;
      const e = fromJson<[string, number, string] | null>(json);
      memo.epoch = e ? { id: e[0], seq: Number(e[1]), createdAt: new Date(e[2]) } : null;
    },

    /**
     * The keys of `customerIds` as another statement of `trx` read them (repo.wrappedKeysJson),
     * kept in the transaction's memo as if keysOf had read them.
     */
    adoptWrapped(trx: Db, customerIds: string[], json: unknown): void {
      const memo = memoOf(trx);
      if (!memo) return;
      const rows = fromJson<Array<[string, string, string]>>(json)
        .map(([customerId, epochId, wrapped]) => ({ customerId, epochId, wrapped: Buffer.from(wrapped, 'base64') }));
      unwrapRows(memo, customerIds, rows, new Map());
    },

    /** The customer's data key, created (wrapped by the current epoch) if it has none. */
    async keyFor(db: Db, customerId: string, at: Date): Promise<Buffer> {
      const existing = (await api.keysOf(db, [customerId])).get(customerId);
      if (existing) return existing;
      let epoch = await currentEpoch(db);
      if (!epoch) { await api.ensureEpoch(db, at); epoch = (await currentEpoch(db))!; }
      const dek = crypto.randomBytes(32);
      const wrapped = sealBytes(keyring.epochKey(epoch.id), dek, wrapAad(customerId, epoch.id));
      const memo = memoOf(db);
      if (await repo.insertWrappedKey(db, { customerId, epochId: epoch.id, wrapped, at })) {
        memo?.keys.set(customerId, dek);
        return dek;
      }
      memo?.keys.delete(customerId); // created concurrently: read it (not the memo)
      return (await api.keysOf(db, [customerId])).get(customerId)!;
    },

    /** Destroys the customers' data keys (crypto-shredding). Returns the epoch that wrapped each. */
    async destroyKeys(trx: Db, customerIds: string[]): Promise<Map<string, string>> {
      const out = new Map<string, string>();
      if (customerIds.length === 0) return out;
      api.keysDestroyed(trx, customerIds);
      const rows = await repo.deleteKeys(trx, customerIds);
      for (const r of rows) out.set(r.customerId, r.epochId);
      return out;
    },

    /**
     * The customers' keys were deleted by a statement of `trx` (repo.deleteKeysCte, written with
     * the redaction): the transaction's memo forgets them.
     */
    keysDestroyed(trx: Db, customerIds: string[]): void {
      const memo = memoOf(trx);
      // Gone: a later keyFor in this transaction creates a new key (it reads nothing: no row remains).
      for (const id of customerIds) if (memo) { if (memo.held.has(id)) memo.keys.set(id, null); else memo.keys.delete(id); }
    },

    /** Re-wraps keys of older epochs under the current one, REWRAP_BATCH per transaction. */
    async rewrap(db: Db, at: Date, batch = REWRAP_BATCH): Promise<number> {
      const cur = await currentEpoch(db);
      if (!cur) return 0;
      let total = 0;
      for (;;) {
        const n = await db.transaction().execute(async (trx) => {
          const rows = await repo.lockKeysToRewrap(trx, cur.id, batch);
          const newKey = keyring.epochKey(cur.id);
          for (const r of rows) {
            const dek = unwrap(r.customer_id, r.epoch_id, r.wrapped);
            await repo.setWrappedKey(trx, r.customer_id, cur.id, sealBytes(newKey, dek, wrapAad(r.customer_id, cur.id)), at);
          }
          return rows.length;
        });
        total += n;
        if (n < batch) return total;
      }
    },

    /**
     * Marks retired epochs that wrap no key as out of use (since now), and destroys those out of use
     * for backupRetentionDays: key file removed, directory fsync'd, row stamped, audited.
     */
    async destroyUnused(db: Db, at: Date, retentionDays: number, actorKeyId: string | null = null): Promise<{ outOfUse: number; destroyed: string[] }> {
      await adoptOrphans(db, at);
      const epochs = await repo.listRetiredLiveEpochs(db);
      let outOfUse = 0;
      const destroyed: string[] = [];
      for (const e of epochs) {
        await db.transaction().execute(async (trx) => {
          const row = await repo.lockLiveEpoch(trx, e.id);
          if (!row) return;
          if (await repo.epochWrapsAnyKey(trx, e.id)) {
            if (row.outOfUseSince) await repo.setEpochStamp(trx, e.id, { outOfUseSince: null });
            return;
          }
          const since = row.outOfUseSince ? new Date(row.outOfUseSince) : at;
          if (!row.outOfUseSince) { await repo.setEpochStamp(trx, e.id, { outOfUseSince: at }); outOfUse++; }
          if (since.getTime() + retentionDays * DAY_MS > at.getTime()) return;
          keyring.destroyEpochKey(e.id);
          await repo.setEpochStamp(trx, e.id, { destroyedAt: at });
          await appendAudit(trx, {
            type: 'key_epoch.destroyed', actorKeyId, subjectType: 'key_epoch', subjectId: e.id, at,
            data: { seq: row.seq, outOfUseSince: since.toISOString(), retentionDays },
          });
          destroyed.push(e.id);
        });
      }
      return { outOfUse, destroyed };
    },

    /**
     * When the epoch that last wrapped a destroyed key is destroyed (or is scheduled to be): its
     * audited destruction time, or out-of-use + retention, or its scheduled retirement + re-wrap
     * (the daily job) + retention.
     */
    async unreadableEverywhereBy(db: Db, epochId: string | null, keyDestroyedAt: Date | null): Promise<{ at: Date; confirmed: boolean } | null> {
      if (!epochId || !keyDestroyedAt) return null;
      const e = await repo.findEpoch(db, epochId);
      if (!e) return null;
      if (e.destroyedAt) return { at: new Date(e.destroyedAt), confirmed: true };
      const retention = await retentionDaysOf(db);
      if (e.outOfUseSince) return { at: new Date(new Date(e.outOfUseSince).getTime() + retention * DAY_MS), confirmed: false };
      const retire = e.retiredAt ? new Date(e.retiredAt).getTime() : new Date(e.createdAt).getTime() + (await epochDays(db)) * DAY_MS;
      const start = Math.max(retire, keyDestroyedAt.getTime()) + DAY_MS; // the daily job re-wraps what remains
      return { at: new Date(start + retention * DAY_MS), confirmed: false };
    },

    /** Whether a key could not be unwrapped because its epoch is gone. */
    isUnavailable: (e: unknown) => e instanceof KeyUnavailableError,
  };
  return api;
}

export type CustomerKeys = ReturnType<typeof createCustomerKeys>;
