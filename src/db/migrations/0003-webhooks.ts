import type { Kysely } from 'kysely';
import { runDdl } from '../ddl.ts';

// The transactional outbox: a webhook is a row written in the same transaction as its cause,
// delivered later by the dispatcher under a lease (FOR UPDATE SKIP LOCKED), so a crash loses
// nothing and two instances never send one row at once.
export async function up(db: Kysely<unknown>): Promise<void> {
  await runDdl(db, `
    CREATE TABLE webhook_outbox (
      id text PRIMARY KEY,
      -- No foreign key to applications: its per-row check was about a tenth of the daily pass's
      -- cost (a million outbox rows). Integrity holds without it: every writer copies
      -- application_id, in the same transaction, from a row that references applications
      -- itself (deletion_cases, licenses, the application being changed), and applications are
      -- never deleted (webhook_deliveries keeps its foreign key).
      application_id uuid NOT NULL,
      case_id uuid,
      event_type text NOT NULL,
      payload jsonb NOT NULL,
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
      attempts integer NOT NULL DEFAULT 0,
      next_attempt_at timestamptz NOT NULL,
      lease_owner text,
      lease_until timestamptz,
      last_status_code integer,
      last_error text,
      created_at timestamptz NOT NULL,
      delivered_at timestamptz
    );
    -- The dispatcher claims per endpoint (oldest due first) and counts each endpoint's leased rows;
    -- no other index (not even on case_id), so a notification pass enqueues fast.
    CREATE INDEX webhook_outbox_app_due_idx ON webhook_outbox (application_id, next_attempt_at, id) WHERE status = 'pending';
    CREATE INDEX webhook_outbox_leased_idx ON webhook_outbox (application_id, lease_until) WHERE lease_until IS NOT NULL;

    CREATE TABLE webhook_deliveries (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      outbox_id text NOT NULL REFERENCES webhook_outbox(id),
      application_id uuid NOT NULL REFERENCES applications(id),
      attempt integer NOT NULL,
      attempted_at timestamptz NOT NULL,
      duration_ms integer NOT NULL,
      status_code integer,
      outcome text NOT NULL,
      error text
    );
    CREATE INDEX webhook_deliveries_app_idx ON webhook_deliveries (application_id, attempted_at DESC, id DESC);
    CREATE INDEX webhook_deliveries_outbox_idx ON webhook_deliveries (outbox_id, attempt);
  `);
}
