import { type Kysely, sql } from 'kysely';

/**
 * The erasure-journal flush's writer lock and its claim of the pending entries in one round trip
 * (issue 14), as lethe_audit_head (0016) does for the audit chain: a function, because a single
 * statement's snapshot is taken before it waits for the lock, while the UPDATE inside a VOLATILE
 * function takes its own after pg_advisory_xact_lock returns, and so sees every entry committed
 * before the lock was granted. A flush runs after every DELETE (shared by the DELETEs in flight).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql.raw(`
    CREATE FUNCTION lethe_journal_claim(p_lock bigint, p_at timestamptz) RETURNS SETOF erasure_journal
    LANGUAGE plpgsql VOLATILE AS $fn$
    BEGIN
      PERFORM pg_advisory_xact_lock(p_lock);
      RETURN QUERY WITH claimed AS (
        UPDATE erasure_journal SET file_appended_at = p_at WHERE file_appended_at IS NULL RETURNING *
      ) SELECT * FROM claimed;
    END
    $fn$`).execute(db);
}
