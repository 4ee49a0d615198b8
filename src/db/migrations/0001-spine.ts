import type { Kysely } from 'kysely';
import { runDdl } from '../ddl.ts';

// Collections share a shape: id, customer link, timestamps and a soft-delete marker.
const collection = (db: Kysely<unknown>, name: string, columns: string) => runDdl(db, `
  CREATE TABLE ${name} (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id uuid NOT NULL REFERENCES customers(id),
    ${columns},
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz
  );
  CREATE INDEX ${name}_customer_idx ON ${name} (customer_id, created_at, id);
`);

export async function up(db: Kysely<unknown>): Promise<void> {
  await runDdl(db, `
    CREATE TABLE settings (
      id integer PRIMARY KEY CHECK (id = 1),
      automatic_personal_data_deletion boolean NOT NULL DEFAULT true,
      grace_period_days integer NOT NULL DEFAULT 90,
      notification_time text NOT NULL DEFAULT '00:00',
      notification_time_zone text NOT NULL DEFAULT 'UTC',
      backup_retention_days integer NOT NULL DEFAULT 30,
      overdue_after_days integer NOT NULL DEFAULT 30,
      redaction_overrides jsonb NOT NULL DEFAULT '{}',
      policy_version integer NOT NULL DEFAULT 1,
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    INSERT INTO settings (id) VALUES (1);

    CREATE TABLE applications (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      name text NOT NULL,
      webhook_url text,
      webhook_secret text NOT NULL,
      previous_webhook_secret text,
      previous_secret_expires_at timestamptz,
      enabled boolean NOT NULL DEFAULT true,
      disabled_reason text,
      failing_since timestamptz,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL
    );
    CREATE INDEX applications_page_idx ON applications (created_at, id);

    CREATE TABLE api_keys (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      kind text NOT NULL CHECK (kind IN ('operator', 'application')),
      key_hash text NOT NULL UNIQUE,
      key_prefix text NOT NULL,
      created_by_key_id uuid,
      created_at timestamptz NOT NULL,
      revoked_at timestamptz
    );
    CREATE TABLE api_key_applications (
      api_key_id uuid NOT NULL REFERENCES api_keys(id),
      application_id uuid NOT NULL REFERENCES applications(id),
      PRIMARY KEY (api_key_id, application_id)
    );

    CREATE TABLE customers (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      salutation text,
      first_name text,
      last_name text,
      display_name text,
      email text,
      organization text,
      tin text,
      last_login_success_ip text,
      last_login_failure_ip text,
      sdk_register_ip text,
      metadata jsonb NOT NULL DEFAULT '{}',
      legal_hold boolean NOT NULL DEFAULT false,
      profile_photo_key text,
      profile_photo_content_type text,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      deleted_at timestamptz,
      redacted_at timestamptz
    );
    CREATE INDEX customers_page_idx ON customers (created_at, id) WHERE deleted_at IS NULL;
    CREATE INDEX customers_email_idx ON customers (lower(email)) WHERE deleted_at IS NULL;
    CREATE INDEX customers_unredacted_idx ON customers (deleted_at) WHERE deleted_at IS NOT NULL AND redacted_at IS NULL;
  `);

  await collection(db, 'addresses', `
    salutation text, first_name text, last_name text, title text, company text, department text,
    line1 text, line2 text, city text, postal_code text, country text, phone text`);
  await collection(db, 'payment_methods', `
    brand text, card_id text, last4 text, exp_month integer, exp_year integer, token text`);
  await collection(db, 'subscriptions', `
    plan text NOT NULL, status text NOT NULL CHECK (status IN ('active', 'cancelled')),
    gift_recipient_email text, gift_recipient_first_name text, gift_recipient_last_name text,
    cancelled_at timestamptz`);
  await collection(db, 'memberships', `name text NOT NULL, role text, status text`);
  await collection(db, 'social_identities', `provider text NOT NULL, external_id text NOT NULL`);
  await collection(db, 'invoices', `
    number text NOT NULL, amount_minor bigint NOT NULL, currency text NOT NULL,
    status text NOT NULL CHECK (status IN ('open', 'paid', 'void'))`);
  await collection(db, 'orders', `number text NOT NULL, amount_minor bigint NOT NULL, currency text NOT NULL`);
  await collection(db, 'licenses', `
    application_id uuid NOT NULL REFERENCES applications(id),
    status text NOT NULL CHECK (status IN ('active', 'cancelled')), cancelled_at timestamptz`);

  await runDdl(db, `
    CREATE INDEX licenses_app_idx ON licenses (customer_id, application_id) WHERE status = 'active';

    -- Transactions outlive their customer: the link becomes a keyed pseudonym (customer_ref).
    CREATE TABLE transactions (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      customer_id uuid REFERENCES customers(id),
      customer_ref text,
      amount_minor bigint NOT NULL,
      currency text NOT NULL,
      status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
      invoice_id uuid REFERENCES invoices(id),
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      CHECK (customer_id IS NOT NULL OR customer_ref IS NOT NULL)
    );
    CREATE INDEX transactions_customer_idx ON transactions (customer_id, created_at, id);
    CREATE INDEX transactions_pending_idx ON transactions (customer_id) WHERE status = 'pending';
    CREATE INDEX transactions_page_idx ON transactions (created_at, id);

    CREATE TABLE activity (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      customer_id uuid NOT NULL REFERENCES customers(id),
      type text NOT NULL,
      record_id uuid,
      details jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL
    );
    CREATE INDEX activity_customer_idx ON activity (customer_id, created_at, id);
    CREATE INDEX activity_page_idx ON activity (created_at, id);

    -- Append-only, hash-chained. Ids and counts only; never personal data.
    CREATE TABLE audit_events (
      seq bigint PRIMARY KEY,
      id uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
      type text NOT NULL,
      actor_key_id uuid,
      subject_type text,
      subject_id uuid,
      data jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL,
      prev_hash text NOT NULL,
      hash text NOT NULL
    );
    CREATE INDEX audit_events_subject_idx ON audit_events (subject_id);

    CREATE TABLE deletions (
      customer_id uuid PRIMARY KEY,
      deleted_at timestamptz NOT NULL,
      actor_key_id uuid,
      counts jsonb NOT NULL,
      preserved_transactions integer NOT NULL,
      applications_notified jsonb NOT NULL,
      audit_event_id uuid NOT NULL,
      audit_hash text NOT NULL,
      redaction jsonb,
      backup_id uuid
    );

    CREATE TABLE idempotency_keys (
      api_key_id uuid NOT NULL,
      key text NOT NULL,
      method text NOT NULL,
      path text NOT NULL,
      body_hash text NOT NULL,
      status_code integer,
      response_body jsonb,
      customer_id uuid,
      created_at timestamptz NOT NULL,
      PRIMARY KEY (api_key_id, key)
    );
    CREATE INDEX idempotency_keys_customer_idx ON idempotency_keys (customer_id);
    CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

    -- Stored files whose removal must survive a crash between commit and unlink.
    CREATE TABLE blob_deletions (
      blob_key text PRIMARY KEY,
      requested_at timestamptz NOT NULL
    );
  `);
}
