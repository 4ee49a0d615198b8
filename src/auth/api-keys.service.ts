import { appendAudit } from '../audit/audit.repo.ts';
import type { Ctx } from '../context.ts';
import { AppError, notFound } from '../http/errors.ts';
import type { PageQuery } from '../http/pagination.ts';
import type { Principal } from './api-keys.ts';
import * as repo from './api-keys.repo.ts';

/** lastUsedAt is written at most this often per key (no write per request). */
export const LAST_USED_INTERVAL_MS = 60_000;
/** Keys whose expiry is remembered; past this the memo is cleared (it is only a cache of immutable values). */
const MEMO_LIMIT = 10_000;

export interface KeyView {
  id: string; kind: 'operator' | 'application'; applicationIds: string[]; label: string | null;
  createdAt: Date; expiresAt: Date | null; lastUsedAt: Date | null; revokedAt: Date | null;
}

/**
 * The API key lifecycle: list, read (never the key), revoke, expiry and last use.
 * Revocation is read from the database on every request (no cache), so a revoked key answers
 * 401 on every instance as soon as the revocation commits. Only immutable facts are memoized:
 * a key's expiry, and when this instance last recorded its use.
 */
export function createApiKeysService(ctx: Ctx) {
  const { db, clock } = ctx;
  const memo = new Map<string, { expiresAt: Date | null; lastWrite: number }>();

  const view = (row: repo.KeyRow, applicationIds: string[]): KeyView => ({
    id: row.id, kind: row.kind, applicationIds, label: row.label, createdAt: row.createdAt,
    expiresAt: row.expiresAt, lastUsedAt: row.lastUsedAt, revokedAt: row.revokedAt,
  });

  async function get(id: string): Promise<KeyView> {
    const row = await repo.findKey(db, id);
    if (!row) throw notFound('API key');
    return view(row, (await repo.applicationIdsOf(db, [id])).get(id) ?? []);
  }

  return {
    async list(page: PageQuery) {
      const result = await repo.listKeys(db, page);
      const apps = await repo.applicationIdsOf(db, result.data.map((r) => r.id));
      return { data: result.data.map((r) => view(r, apps.get(r.id) ?? [])), nextCursor: result.nextCursor };
    },

    get,

    /**
     * Sets or clears a key's label (an operator's note; blank → none), also on a revoked key.
     * Audited as `api_key.labelled` with whether it was set or cleared, never the text; an
     * unchanged label writes nothing.
     */
    async setLabel(principal: Principal | null, id: string, input: string | null): Promise<KeyView> {
      const label = input?.trim() ? input.trim() : null;
      await db.transaction().execute(async (trx) => {
        const row = await repo.findKey(trx, id, true);
        if (!row) throw notFound('API key');
        if (row.label === label) return;
        await repo.setKeyLabel(trx, id, label);
        await appendAudit(trx, {
          type: 'api_key.labelled', actorKeyId: principal?.keyId ?? null, subjectType: 'api_key', subjectId: id, at: clock.now(),
          data: { kind: row.kind, label: label === null ? 'cleared' : 'set' },
        });
      });
      return get(id);
    },

    /** Revokes a key; revoking a revoked key changes nothing. The last active operator key cannot go. */
    async revoke(principal: Principal | null, id: string, via?: 'cli'): Promise<void> {
      await db.transaction().execute(async (trx) => {
        await repo.lockKeyTable(trx);
        const row = await repo.findKey(trx, id, true);
        if (!row) throw notFound('API key');
        if (row.revokedAt) return;
        const at = clock.now();
        if (row.kind === 'operator' && await repo.countOtherActiveOperatorKeys(trx, id, at) === 0) {
          throw new AppError('last_operator_key', 'This is the last active operator key: issue another operator key before revoking it');
        }
        await repo.revokeKey(trx, id, at);
        await appendAudit(trx, {
          type: 'api_key.revoked', actorKeyId: principal?.keyId ?? null, subjectType: 'api_key', subjectId: id, at,
          data: { kind: row.kind, ...(via ? { via } : {}) },
        });
      });
      memo.delete(id);
    },

    /**
     * Called by authentication for every request with a known, unrevoked key: refuses an expired
     * key (401) and records its use at most once a minute.
     */
    async admit(principal: Principal): Promise<void> {
      const now = clock.now();
      let m = memo.get(principal.keyId);
      if (!m) {
        const row = await repo.expiryOf(db, principal.keyId);
        if (!row) throw new AppError('unauthorized', 'Unknown or revoked API key', undefined, { 'www-authenticate': 'Bearer' });
        if (memo.size >= MEMO_LIMIT) memo.clear();
        m = { expiresAt: row.expiresAt, lastWrite: row.lastUsedAt?.getTime() ?? -Infinity };
        memo.set(principal.keyId, m);
      }
      if (m.expiresAt && m.expiresAt.getTime() <= now.getTime()) {
        throw new AppError('unauthorized', 'This API key has expired', undefined, { 'www-authenticate': 'Bearer' });
      }
      if (now.getTime() - m.lastWrite >= LAST_USED_INTERVAL_MS) {
        m.lastWrite = now.getTime();
        await repo.touchKey(db, principal.keyId, now, LAST_USED_INTERVAL_MS);
      }
    },
  };
}

export type ApiKeysService = ReturnType<typeof createApiKeysService>;
