import { type SelectQueryBuilder, sql } from 'kysely';
import { validation } from './errors.ts';

export interface PageQuery { limit?: number; cursor?: string }
export interface Page<T> { data: T[]; nextCursor: string | null }

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;

interface CursorPosition { t: string; id: string }

const ISO_INSTANT = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function encodeCursor(createdAt: Date, id: string): string {
  return Buffer.from(JSON.stringify({ t: createdAt.toISOString(), id })).toString('base64url');
}

export function decodeCursor(cursor: string): CursorPosition {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as CursorPosition;
    // Exactly what encodeCursor writes: an ISO instant the database can hold and a real uuid.
    if (!parsed || typeof parsed !== 'object' || typeof parsed.t !== 'string' || typeof parsed.id !== 'string'
      || !ISO_INSTANT.test(parsed.t) || !UUID.test(parsed.id)) throw new Error('shape');
    const t = new Date(parsed.t);
    if (Number.isNaN(t.getTime()) || t.toISOString() !== parsed.t) throw new Error('time');
    return parsed;
  } catch {
    throw validation('querystring.cursor is not a cursor returned by this API');
  }
}

/** Another keyset than the default (created_at, id) ascending: e.g. newest first by started_at. */
export interface PageOrder<O> {
  /** The SQL time column of the query's main table (paired with its `id`). */
  column: string;
  /** The row's value of that column, for the next cursor. */
  timeOf(row: O): Date;
  newestFirst?: boolean;
}

/**
 * Keyset pagination over (created_at, id) of the query's main table; the caller's query must
 * select createdAt and id. Fetches one row more than asked to know whether a next page exists.
 * With `order`, over (order.column, id) instead, newest first when asked.
 */
export async function paginate<DB, TB extends keyof DB, O extends { createdAt: Date; id: string }>(
  query: SelectQueryBuilder<DB, TB, O>, table: string, page: PageQuery): Promise<Page<O>>;
export async function paginate<DB, TB extends keyof DB, O extends { id: string }>(
  query: SelectQueryBuilder<DB, TB, O>, table: string, page: PageQuery, order: PageOrder<O>): Promise<Page<O>>;
export async function paginate<DB, TB extends keyof DB, O extends { id: string }>(
  query: SelectQueryBuilder<DB, TB, O>,
  table: string,
  page: PageQuery,
  order: PageOrder<O> = { column: 'created_at', timeOf: (row) => (row as unknown as { createdAt: Date }).createdAt },
): Promise<Page<O>> {
  const limit = Math.min(page.limit ?? DEFAULT_LIMIT, MAX_LIMIT);
  const column = sql.ref(`${table}.${order.column}`);
  const idColumn = sql.ref(`${table}.id`);
  const direction = order.newestFirst ? 'desc' : 'asc';
  let q = query;
  if (page.cursor) {
    const c = decodeCursor(page.cursor);
    q = order.newestFirst
      ? q.where(sql<boolean>`(${column}, ${idColumn}) < (${new Date(c.t)}, ${c.id}::uuid)`)
      : q.where(sql<boolean>`(${column}, ${idColumn}) > (${new Date(c.t)}, ${c.id}::uuid)`);
  }
  const rows = await q.orderBy(column, direction).orderBy(idColumn, direction).limit(limit + 1).execute();
  const hasMore = rows.length > limit;
  const data = hasMore ? rows.slice(0, limit) : rows;
  const last = data[data.length - 1];
  return { data, nextCursor: hasMore && last ? encodeCursor(order.timeOf(last), last.id) : null };
}
