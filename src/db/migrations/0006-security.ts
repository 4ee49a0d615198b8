import { type Kysely, sql } from 'kysely';
import { runDdl } from '../ddl.ts';

/**
 * Issue 17 (security):
 * - audit_events refuses UPDATE and DELETE (and TRUNCATE, except inside a documented restore,
 *   which sets `lethe.audit_restore` for its own transaction);
 * - audit_chain_state records where release 1's unkeyed chain ends: the runtime re-anchors it
 *   once under the audit key (an `audit.chain_rekeyed` event), see src/audit/audit.repo.ts.
 * Webhook secrets are sealed and release 1's unkeyed API key hashes rehashed by the runtime
 * (they need the master key, which migrations never see).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await runDdl(db, `
    CREATE TABLE audit_chain_state (
      id integer PRIMARY KEY CHECK (id = 1),
      legacy_until_seq bigint NOT NULL,
      rekeyed_at timestamptz
    );
    INSERT INTO audit_chain_state (id, legacy_until_seq, rekeyed_at)
      SELECT 1, coalesce(max(seq), 0), NULL FROM audit_events;
  `);
  // One statement (runDdl splits on line-final semicolons, which a function body has).
  await sql.raw(`CREATE FUNCTION lethe_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      IF TG_OP = 'TRUNCATE' AND coalesce(current_setting('lethe.audit_restore', true), '') = 'on' THEN RETURN NULL; END IF;
      RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $fn$`).execute(db);
  await runDdl(db, `
    CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
      FOR EACH ROW EXECUTE FUNCTION lethe_audit_append_only();
    CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
      FOR EACH STATEMENT EXECUTE FUNCTION lethe_audit_append_only();
  `);
}
