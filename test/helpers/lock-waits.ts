import { sql } from 'kysely';
import type { Db } from '../../src/db/database.ts';

/**
 * Polls (up to 5 s) until at least `count` backends of this database wait on an advisory lock, as
 * pg_stat_activity shows it; true once they do. Tests use it to know a transaction is blocked
 * on a lock another one holds before they change what the waiter will read.
 */
export async function someoneWaitsOnAdvisoryLock(db: Db, count = 1): Promise<boolean> {
  for (let i = 0; i < 250; i++) {
    const waiting = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE wait_event_type = 'Lock' AND wait_event = 'advisory' AND datname = current_database()`.execute(db);
    if (waiting.rows[0]!.n >= count) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}
