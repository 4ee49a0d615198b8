import { sql } from 'kysely';
import type { Db } from '../db/database.ts';

/**
 * Living customers the grace-period job may delete (deleteCustomerWhenGraceEnds): who held at
 * least one license, hold no active license now, and have deletion cases, none of them still in
 * its grace period (or revoked). Keyset-paged by id.
 */
export async function graceDeletionCandidates(db: Db, after: string | null, limit: number): Promise<string[]> {
  const r = await sql<{ id: string }>`
    SELECT c.id FROM customers c
    WHERE c.deleted_at IS NULL ${after ? sql`AND c.id > ${after}::uuid` : sql``}
      AND EXISTS (SELECT 1 FROM licenses l WHERE l.customer_id = c.id)
      AND NOT EXISTS (SELECT 1 FROM licenses l WHERE l.customer_id = c.id AND l.status = 'active' AND l.deleted_at IS NULL)
      AND EXISTS (SELECT 1 FROM deletion_cases d WHERE d.customer_id = c.id)
      AND NOT EXISTS (SELECT 1 FROM deletion_cases d WHERE d.customer_id = c.id AND d.status IN ('grace', 'revoked'))
    ORDER BY c.id LIMIT ${limit}`.execute(db);
  return r.rows.map((x) => x.id);
}
