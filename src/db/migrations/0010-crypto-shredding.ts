import type { Kysely } from 'kysely';
import { runDdl } from '../ddl.ts';

/**
 * Crypto-shredding (issue 16): per-customer data keys wrapped by key-epoch keys that live in the
 * keyring outside the database. The schema only: existing rows are encrypted afterwards, in
 * resumable batches while serving (src/crypto/data-migration.ts), because encryption needs the
 * keyring and the master key, which a migration does not have.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await runDdl(db, `
    -- Key epochs: metadata only. The epoch keys themselves are files of the keyring directory.
    CREATE TABLE key_epochs (
      id uuid PRIMARY KEY,
      seq integer NOT NULL UNIQUE,
      created_at timestamptz NOT NULL,
      retired_at timestamptz,
      out_of_use_since timestamptz,
      destroyed_at timestamptz
    );

    -- One data key per customer, wrapped (AES-256-GCM) by an epoch key. Deleting the row is the shredding.
    CREATE TABLE customer_keys (
      customer_id uuid PRIMARY KEY,
      epoch_id uuid NOT NULL REFERENCES key_epochs (id),
      wrapped bytea NOT NULL,
      created_at timestamptz NOT NULL,
      wrapped_at timestamptz NOT NULL
    );
    CREATE INDEX customer_keys_epoch_idx ON customer_keys (epoch_id, customer_id);

    -- Which keyring this database belongs to, and the progress of encrypting pre-existing rows.
    CREATE TABLE crypto_state (
      id integer PRIMARY KEY CHECK (id = 1),
      keyring_id uuid,
      migration_cursor uuid,
      migration_done_at timestamptz
    );
    INSERT INTO crypto_state (id) VALUES (1);
    -- A database with no customer and no archive has nothing in clear to encrypt.
    UPDATE crypto_state SET migration_done_at = now()
      WHERE NOT EXISTS (SELECT 1 FROM customers) AND NOT EXISTS (SELECT 1 FROM backup_archives);

    -- A new key epoch starts every key_epoch_days.
    ALTER TABLE settings ADD COLUMN key_epoch_days integer NOT NULL DEFAULT 7 CHECK (key_epoch_days BETWEEN 1 AND 365);

    -- Blind index of the normalized e-mail (HMAC under a key derived from the master key).
    ALTER TABLE customers ADD COLUMN email_bidx text;
    -- The old index held lower(email) in clear, and cannot work on ciphertext.
    DROP INDEX IF EXISTS customers_email_idx;
    CREATE INDEX customers_email_bidx_idx ON customers (email_bidx) WHERE deleted_at IS NULL;

    -- Encrypted values are text: card expiry moves from integer to text (the API still speaks numbers).
    ALTER TABLE payment_methods ALTER COLUMN exp_month TYPE text USING exp_month::text;
    ALTER TABLE payment_methods ALTER COLUMN exp_year TYPE text USING exp_year::text;

    -- Archives sealed under an epoch key name it (NULL: sealed by release 1 under the backup key).
    ALTER TABLE backup_archives ADD COLUMN key_epoch_id uuid;

    -- Receipt: when the customer's key was destroyed and which epoch last wrapped it.
    ALTER TABLE deletions ADD COLUMN key_destroyed_at timestamptz;
    ALTER TABLE deletions ADD COLUMN key_epoch_id uuid;
  `);
}
