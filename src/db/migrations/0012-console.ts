import type { Kysely } from 'kysely';
import { runDdl } from '../ddl.ts';

export async function up(db: Kysely<unknown>): Promise<void> {
  await runDdl(db, `
    -- Receipt-signing keys (Ed25519). The private key is sealed under a key derived from the
    -- master key; public keys are kept forever so old receipts still verify after a rotation.
    CREATE TABLE receipt_signing_keys (
      key_id text PRIMARY KEY,
      algorithm text NOT NULL DEFAULT 'Ed25519',
      public_key text NOT NULL,
      sealed_private_key bytea NOT NULL,
      created_at timestamptz NOT NULL,
      retired_at timestamptz
    );
    CREATE UNIQUE INDEX receipt_signing_keys_current_idx ON receipt_signing_keys ((true)) WHERE retired_at IS NULL;

    -- A short, scrubbed excerpt of the endpoint's response to a failed attempt (delivery health).
    -- Lives on the delivery row, so it goes when the row is pruned; cleared at the customer's deletion.
    ALTER TABLE webhook_deliveries ADD COLUMN response_excerpt text;
  `);
}
