import type { Kysely } from 'kysely';
import { runDdl } from '../ddl.ts';

/**
 * Operator and compliance completeness (issue 13):
 * - API keys gain a label, an expiry and a last-used time (written at most once a minute per key);
 * - customers gain externalId, unique among living customers;
 * - the erasure journal records records removed one by one (kind 'record', the record's table and id);
 * - settings gain deleteCustomerWhenGraceEnds (default false); deletions name a system actor.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await runDdl(db, `
    ALTER TABLE api_keys ADD COLUMN label text;
    ALTER TABLE api_keys ADD COLUMN expires_at timestamptz;
    ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;

    ALTER TABLE customers ADD COLUMN external_id text;
    CREATE UNIQUE INDEX customers_external_id_live_idx ON customers (external_id)
      WHERE deleted_at IS NULL AND external_id IS NOT NULL;

    ALTER TABLE erasure_journal DROP CONSTRAINT IF EXISTS erasure_journal_kind_check;
    ALTER TABLE erasure_journal ADD CONSTRAINT erasure_journal_kind_check CHECK (kind IN ('deletion', 'confirmation', 'record'));
    ALTER TABLE erasure_journal ADD COLUMN record_table text;
    ALTER TABLE erasure_journal ADD COLUMN record_id uuid;

    ALTER TABLE settings ADD COLUMN delete_customer_when_grace_ends boolean NOT NULL DEFAULT false;
    -- A deletion done by Lethe itself (the grace-period job) names its system actor; null for a key's.
    ALTER TABLE deletions ADD COLUMN actor text;
  `);
}
