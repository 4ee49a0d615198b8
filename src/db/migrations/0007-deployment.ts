import type { Kysely } from 'kysely';
import { runDdl } from '../ddl.ts';

/**
 * Many instances, one truth (issue 11):
 * - stored_files: profile photos and sealed archives live in the database (bytea), so every
 *   instance serves, deletes and backs them up; no instance's disk keeps a copy.
 * - deployment: what every instance must agree on (master-key fingerprint, backup-location marker).
 * - job_runs: claims of scheduled runs (exactly one instance runs a slot), pruned after a retention.
 * - erasure_journal.file_appended_at: entries not yet in the shared journal file (one writer appends).
 * - settings: scheduled database backups and retention of operational tables.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await runDdl(db, `
    CREATE TABLE stored_files (
      key text PRIMARY KEY,
      content bytea NOT NULL,
      size_bytes integer NOT NULL,
      created_at timestamptz NOT NULL
    );

    CREATE TABLE deployment (
      id integer PRIMARY KEY CHECK (id = 1),
      key_fingerprint text,
      backup_marker_id uuid,
      updated_at timestamptz NOT NULL
    );

    CREATE TABLE job_runs (
      job text NOT NULL,
      slot text NOT NULL,
      instance_id text NOT NULL,
      started_at timestamptz NOT NULL,
      finished_at timestamptz,
      outcome text,
      PRIMARY KEY (job, slot)
    );
    CREATE INDEX job_runs_started_idx ON job_runs (started_at);

    ALTER TABLE erasure_journal ADD COLUMN file_appended_at timestamptz;
    UPDATE erasure_journal SET file_appended_at = recorded_at;
    CREATE INDEX erasure_journal_unappended_idx ON erasure_journal (seq) WHERE file_appended_at IS NULL;

    ALTER TABLE settings ADD COLUMN database_backup_enabled boolean NOT NULL DEFAULT false;
    ALTER TABLE settings ADD COLUMN database_backup_time text NOT NULL DEFAULT '02:30';
    ALTER TABLE settings ADD COLUMN webhook_log_retention_days integer NOT NULL DEFAULT 30;
    ALTER TABLE settings ADD COLUMN job_run_retention_days integer NOT NULL DEFAULT 90;

    CREATE INDEX webhook_outbox_prune_idx ON webhook_outbox (created_at) WHERE status <> 'pending';
    CREATE INDEX webhook_deliveries_prune_idx ON webhook_deliveries (attempted_at);
  `);
}
