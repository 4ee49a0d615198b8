import type { Kysely } from 'kysely';
import { runDdl } from '../ddl.ts';

// The partner side: a confirmation says what the application did (`deleted`, or `no_data_held`
// when it held nothing); existing confirmations were all deletions. The case keeps the outcome of
// the confirmation that closed it (null while open). The history is listed oldest first, for
// operators across all applications and for an application over its own. The erasure journal
// records the outcome of each confirmation (null: a deletion, or a confirmation journaled before).
export async function up(db: Kysely<unknown>): Promise<void> {
  await runDdl(db, `
    ALTER TABLE deletion_confirmations ADD COLUMN outcome text NOT NULL DEFAULT 'deleted'
      CONSTRAINT deletion_confirmations_outcome_check CHECK (outcome IN ('deleted', 'no_data_held'));
    ALTER TABLE deletion_cases ADD COLUMN outcome text
      CONSTRAINT deletion_cases_outcome_check CHECK (outcome IN ('deleted', 'no_data_held'));
    UPDATE deletion_cases SET outcome = 'deleted' WHERE status = 'confirmed';
    CREATE INDEX deletion_confirmations_page_idx ON deletion_confirmations (confirmed_at, id);
    CREATE INDEX deletion_confirmations_app_idx ON deletion_confirmations (application_id, confirmed_at, id);
    -- The erasure journal carries a confirmation's outcome, so a restore's replay keeps it.
    ALTER TABLE erasure_journal ADD COLUMN outcome text
      CONSTRAINT erasure_journal_outcome_check CHECK (outcome IN ('deleted', 'no_data_held'));
  `);
}
