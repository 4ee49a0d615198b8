import type { Kysely } from 'kysely';
import { runDdl } from '../ddl.ts';

/**
 * customers.external_id under crypto-shredding (issues 13 and 16): the value is sealed under the
 * customer's key, and sealing is randomized, so a unique index on external_id would accept two
 * living customers with the same id. The uniqueness among living customers and the ?externalId=
 * filter move to a blind index (HMAC with its own label, src/crypto/field-crypto.ts), cleared at
 * redaction with the e-mail's. Existing values get theirs from the data migration (crypto domain).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await runDdl(db, `
    ALTER TABLE customers ADD COLUMN external_id_bidx text;
    DROP INDEX IF EXISTS customers_external_id_live_idx;
    CREATE UNIQUE INDEX customers_external_id_bidx_live_idx ON customers (external_id_bidx)
      WHERE deleted_at IS NULL AND external_id_bidx IS NOT NULL;
  `);
}
