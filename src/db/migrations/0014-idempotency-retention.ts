import type { Kysely } from 'kysely';
import { runDdl } from '../ddl.ts';

/**
 * Idempotency records' retention as a setting (issue 11: every operational table is pruned after
 * a retention the operator chooses): how many hours a stored response is replayed, after which the
 * daily retention job deletes it. Default 24 (the fixed window before this migration).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await runDdl(db, `
    ALTER TABLE settings ADD COLUMN idempotency_retention_hours integer NOT NULL DEFAULT 24;
  `);
}
