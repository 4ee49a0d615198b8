import { COLLECTIONS } from '../customers/collections.ts';

/**
 * What a customer deletion does to every table that refers to a customer. A test walks
 * information_schema and fails when a table with a customer reference is missing here, so a
 * table added later cannot be forgotten by the cascade.
 */
export type CascadeAction =
  | 'soft_delete'   // marked deleted with the customer, then unreachable through the API
  | 'unlink'        // kept (compliance), the customer link replaced by a keyed pseudonym
  | 'purge'         // rows deleted (activity log: all but the customer.deleted entry)
  | 'evidence';     // deletion evidence that holds ids only and outlives the customer

export const CASCADE: Record<string, CascadeAction> = {
  customers: 'soft_delete',
  ...Object.fromEntries(COLLECTIONS.filter((c) => c.softDelete).map((c) => [c.sqlTable, 'soft_delete' as const])),
  transactions: 'unlink',
  activity: 'purge',
  idempotency_keys: 'purge',
  customer_keys: 'purge',       // the customer's data key: destroyed with its redaction (crypto-shredding)
  deletions: 'evidence',
  audit_events: 'evidence',
  backup_archives: 'evidence',  // sealed archive, destroyed by the retention job after backupRetentionDays
  erasure_journal: 'evidence',
  deletion_cases: 'evidence',
  deletion_confirmations: 'evidence',
  stored_files: 'purge',  // a photo's bytes are deleted with its customer's redaction, in the same transaction
};
