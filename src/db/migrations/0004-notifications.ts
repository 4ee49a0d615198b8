import type { Kysely } from 'kysely';
import { runDdl } from '../ddl.ts';

// Deletion cases: one row per (customer, application), reused across grace periods. Ids and
// times only. No foreign key to customers: a case and its confirmations are evidence that must
// outlive everything else about the customer (the customer row is only soft deleted anyway).
// fillfactor 50: the daily pass rewrites last_notified_day of every due case; with room on each
// page those updates are HOT (no index writes), about ten times cheaper than a full update.
export async function up(db: Kysely<unknown>): Promise<void> {
  await runDdl(db, `
    CREATE TABLE deletion_cases (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      customer_id uuid NOT NULL,
      application_id uuid NOT NULL REFERENCES applications(id),
      status text NOT NULL CHECK (status IN ('grace', 'required', 'confirmed', 'revoked')),
      reason text CHECK (reason IN ('grace_expired', 'customer_deleted')),
      grace_started_at timestamptz,
      grace_ends_at timestamptz,
      required_since timestamptz,
      revoked_at timestamptz,
      confirmed_at timestamptz,
      confirmed_by_key_id uuid,
      last_notified_day text,
      last_notified_at timestamptz,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      UNIQUE (customer_id, application_id)
    ) WITH (fillfactor = 50);
    CREATE INDEX deletion_cases_page_idx ON deletion_cases (created_at, id);
    CREATE INDEX deletion_cases_app_idx ON deletion_cases (application_id, created_at, id);
    CREATE INDEX deletion_cases_grace_idx ON deletion_cases (grace_ends_at) WHERE status = 'grace';
    CREATE INDEX deletion_cases_required_idx ON deletion_cases (required_since) WHERE status = 'required';

    CREATE TABLE deletion_confirmations (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      case_id uuid NOT NULL REFERENCES deletion_cases(id),
      customer_id uuid NOT NULL,
      application_id uuid NOT NULL REFERENCES applications(id),
      key_id uuid NOT NULL,
      reason text,
      required_since timestamptz,
      confirmed_at timestamptz NOT NULL
    );
    CREATE INDEX deletion_confirmations_case_idx ON deletion_confirmations (case_id, confirmed_at);
  `);
}
