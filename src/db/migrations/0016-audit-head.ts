import { type Kysely, sql } from 'kysely';

/**
 * The audit chain's lock and the read of its end in one round trip (issue 14): a function, not
 * one statement, because a statement's snapshot is taken before it waits for the lock; a VOLATILE
 * function's SELECT takes its own snapshot after pg_advisory_xact_lock returns (READ COMMITTED),
 * so it sees the end the previous holder committed. Every append used to take the lock and read
 * the end in two statements, both inside the section that serializes all writers.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql.raw(`
    CREATE FUNCTION lethe_audit_head(lock_key bigint) RETURNS TABLE (seq bigint, hash text)
    LANGUAGE plpgsql VOLATILE AS $fn$
    BEGIN
      PERFORM pg_advisory_xact_lock(lock_key);
      RETURN QUERY SELECT e.seq, e.hash FROM audit_events e ORDER BY e.seq DESC LIMIT 1;
    END
    $fn$`).execute(db);
}
