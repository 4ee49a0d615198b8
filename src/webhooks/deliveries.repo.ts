import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { DEFAULT_LIMIT, MAX_LIMIT, decodeCursor, encodeCursor, type Page } from '../http/pagination.ts';

export interface DeliveryView {
  id: string;
  webhookId: string;
  /** The deletion case the webhook was about (null for other events). */
  caseId: string | null;
  eventType: string;
  attempt: number;
  attemptedAt: Date;
  durationMs: number;
  statusCode: number | null;
  outcome: string;
  error: string | null;
}

/** Every recorded attempt of one endpoint, newest first (keyset over attempted_at, id). */
export async function listDeliveries(db: Db, applicationId: string, q: { limit?: number; cursor?: string; webhookId?: string; outcome?: string }): Promise<Page<DeliveryView>> {
  const limit = Math.min(q.limit ?? DEFAULT_LIMIT, MAX_LIMIT);
  let query = db.selectFrom('webhookDeliveries as d')
    .innerJoin('webhookOutbox as o', 'o.id', 'd.outboxId')
    .select(['d.id', 'd.outboxId as webhookId', 'o.caseId', 'o.eventType', 'd.attempt', 'd.attemptedAt', 'd.durationMs', 'd.statusCode', 'd.outcome', 'd.error'])
    .where('d.applicationId', '=', applicationId);
  if (q.webhookId) query = query.where('d.outboxId', '=', q.webhookId);
  if (q.outcome) query = query.where('d.outcome', '=', q.outcome);
  if (q.cursor) {
    const c = decodeCursor(q.cursor);
    query = query.where(sql<boolean>`(d.attempted_at, d.id) < (${new Date(c.t)}, ${c.id}::uuid)`);
  }
  const rows = await query.orderBy('d.attemptedAt', 'desc').orderBy('d.id', 'desc').limit(limit + 1).execute();
  const hasMore = rows.length > limit;
  const data = (hasMore ? rows.slice(0, limit) : rows).map((r) => ({ ...r, attempt: Number(r.attempt), durationMs: Number(r.durationMs) }));
  const last = data[data.length - 1];
  return { data, nextCursor: hasMore && last ? encodeCursor(last.attemptedAt, last.id) : null };
}

/** Pending rows of an endpoint waiting out a backoff go out now (on re-enable or a new URL). */
export async function resumeEndpoint(trx: Db, applicationId: string, at: Date): Promise<number> {
  const r = await trx.updateTable('webhookOutbox').set({ nextAttemptAt: at })
    .where('applicationId', '=', applicationId).where('status', '=', 'pending').where('nextAttemptAt', '>', at)
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}
