/**
 * THE data map: every column of every table, whether it holds personal data, its category and
 * its default action when a customer is deleted. Redaction, dataset exports, the data-subject
 * export and the residual-PII tests all read this one declaration. A test fails when the
 * database has a table or column this map does not classify.
 *
 * Actions: nullify (set NULL), mask (replace by a shape-keeping value not derivable from the
 * original), delete (remove the stored file), hash (keyed pseudonym), keep (not personal, or kept
 * on purpose: amounts, ids, timestamps).
 */
export type Action = 'nullify' | 'mask' | 'delete' | 'hash' | 'keep';
export type Category =
  | 'id' | 'reference' | 'timestamp' | 'state' | 'technical'
  | 'name' | 'contact' | 'address' | 'government_id' | 'network' | 'financial' | 'payment_card'
  | 'account' | 'free_text' | 'file' | 'secret';
/** How a masked value keeps its field's shape. */
export type MaskShape = 'email' | 'name' | 'phone' | 'text' | 'digits' | 'ip' | 'metadata' | 'month' | 'year' | 'token';

export type Encoding = 'text' | 'int' | 'json' | 'json-values';

export interface Column {
  personal: boolean;
  category: Category;
  action: Action;
  /** Identifies the person on its own (name, e-mail, external id): keeping it needs an explicit override. */
  identifying?: boolean;
  /** How a mask keeps the shape; also the shape used when an operator overrides the action to `mask`. */
  mask?: MaskShape;
  /**
   * Stored encrypted under the customer's data key (crypto-shredding, src/crypto/field-crypto.ts):
   * text → an "enc:" string; int → an "enc:" string read back as a number; json → the whole JSON
   * value sealed into one "enc:" string; json-values → an object whose keys stay and values are sealed.
   */
  encrypted?: Encoding;
  /** Name in redaction-policy keys when it is not the camelCase column ("customer.profilePhoto"). */
  field?: string;
}

export interface TableMap {
  /** Name used in redaction-policy keys ("customer.email") and in the SPEC's redaction table. */
  entity: string;
  columns: Record<string, Column>;
}

const id: Column = { personal: false, category: 'id', action: 'keep' };
const ref: Column = { personal: false, category: 'reference', action: 'keep' };
const ts: Column = { personal: false, category: 'timestamp', action: 'keep' };
const state: Column = { personal: false, category: 'state', action: 'keep' };
const tech: Column = { personal: false, category: 'technical', action: 'keep' };
const money: Column = { personal: false, category: 'financial', action: 'keep' };
// Every personal value is stored encrypted (SPEC "Personal data at rest"): text unless said otherwise.
const nullify = (category: Category, identifying = false, shape?: MaskShape): Column =>
  ({ personal: true, category, action: 'nullify', identifying, encrypted: 'text', ...(shape ? { mask: shape } : {}) });
const mask = (category: Category, shape: MaskShape, identifying = false, encrypted: Encoding = 'text'): Column =>
  ({ personal: true, category, action: 'mask', mask: shape, identifying, encrypted });
const secret: Column = { personal: false, category: 'secret', action: 'keep' };

const lifecycle = { id, customer_id: ref, created_at: ts, updated_at: ts, deleted_at: ts };

/** Keyed by SQL table, then SQL column. */
export const DATA_MAP: Record<string, TableMap> = {
  customers: {
    entity: 'customer',
    columns: {
      id, created_at: ts, updated_at: ts, deleted_at: ts, redacted_at: ts,
      // The platform's own id for the customer: identifying, nullified at redaction.
      external_id: nullify('account', true, 'token'),
      salutation: nullify('name', false, 'text'),
      first_name: mask('name', 'name', true),
      last_name: mask('name', 'name', true),
      display_name: mask('name', 'name', true),
      email: mask('contact', 'email', true),
      organization: nullify('account', false, 'text'),
      tin: nullify('government_id', true, 'token'),
      last_login_success_ip: nullify('network', false, 'ip'),
      last_login_failure_ip: nullify('network', false, 'ip'),
      sdk_register_ip: nullify('network', false, 'ip'),
      metadata: mask('free_text', 'metadata', false, 'json-values'),
      legal_hold: state,
      // The stored file's bytes are encrypted under the customer's key (src/customers/photo-store.ts).
      profile_photo_key: { personal: true, category: 'file', action: 'delete', identifying: true, field: 'profilePhoto' },
      profile_photo_content_type: tech,
      // Blind index of the normalized e-mail (HMAC, key derived from the master key): cleared with the customer's key.
      email_bidx: secret,
      // Blind index of the external id (HMAC, own label): the unique-among-living index and ?externalId= use it.
      external_id_bidx: secret,
    },
  },
  addresses: {
    entity: 'address',
    columns: {
      ...lifecycle,
      salutation: nullify('name', false, 'text'),
      title: nullify('name', false, 'text'),
      postal_code: nullify('address', false, 'digits'),
      first_name: mask('name', 'name', true),
      last_name: mask('name', 'name', true),
      company: mask('account', 'text'),
      department: mask('account', 'text'),
      line1: mask('address', 'text', true),
      line2: mask('address', 'text'),
      phone: mask('contact', 'phone', true),
      city: { personal: true, category: 'address', action: 'keep', mask: 'text', encrypted: 'text' },
      country: { personal: true, category: 'address', action: 'keep', mask: 'text', encrypted: 'text' },
    },
  },
  payment_methods: {
    entity: 'payment_method',
    columns: {
      ...lifecycle,
      brand: { personal: false, category: 'payment_card', action: 'keep' },
      card_id: mask('payment_card', 'token', true),
      last4: mask('payment_card', 'digits'),
      exp_month: mask('payment_card', 'month', false, 'int'),
      exp_year: mask('payment_card', 'year', false, 'int'),
      token: mask('payment_card', 'token', true),
    },
  },
  subscriptions: {
    entity: 'subscription',
    columns: {
      ...lifecycle, plan: state, status: state, cancelled_at: ts,
      gift_recipient_email: mask('contact', 'email', true),
      gift_recipient_first_name: mask('name', 'name', true),
      gift_recipient_last_name: mask('name', 'name', true),
    },
  },
  memberships: { entity: 'membership', columns: { ...lifecycle, name: state, role: state, status: state } },
  social_identities: {
    entity: 'social_identity',
    columns: { ...lifecycle, provider: state, external_id: mask('account', 'token', true) },
  },
  invoices: { entity: 'invoice', columns: { ...lifecycle, number: ref, amount_minor: money, currency: money, status: state } },
  orders: { entity: 'order', columns: { ...lifecycle, number: ref, amount_minor: money, currency: money } },
  licenses: { entity: 'license', columns: { ...lifecycle, application_id: ref, status: state, cancelled_at: ts } },
  transactions: {
    entity: 'transaction',
    columns: {
      id, customer_id: ref, created_at: ts, updated_at: ts, amount_minor: money, currency: money, status: state,
      invoice_id: ref,
      // Replaces customer_id at deletion: a keyed pseudonym, not reversible without the server secret.
      customer_ref: { personal: false, category: 'reference', action: 'hash' },
    },
  },
  activity: {
    entity: 'activity',
    columns: {
      id, customer_id: ref, type: state, record_id: ref, created_at: ts,
      // Entries are purged at deletion except customer.deleted, whose details are masked.
      details: mask('free_text', 'metadata', false, 'json'),
    },
  },
  audit_events: {
    entity: 'audit_event',
    columns: {
      seq: id, id, type: state, actor_key_id: ref, subject_type: state, subject_id: ref, data: tech,
      created_at: ts, prev_hash: tech, hash: tech,
    },
  },
  audit_chain_state: { entity: 'audit_chain_state', columns: { id, legacy_until_seq: tech, rekeyed_at: ts } },
  deletions: {
    entity: 'deletion',
    columns: {
      customer_id: ref, deleted_at: ts, actor_key_id: ref, counts: tech, preserved_transactions: tech,
      applications_notified: tech, audit_event_id: ref, audit_hash: tech, redaction: tech, backup_id: ref, actor: state,
      key_destroyed_at: ts, key_epoch_id: ref,
    },
  },
  idempotency_keys: {
    entity: 'idempotency_key',
    columns: {
      api_key_id: ref, key: tech, method: tech, path: tech, body_hash: tech, status_code: tech, created_at: ts,
      customer_id: ref,
      // A stored response may repeat the customer's data: purged with the customer.
      response_body: { personal: true, category: 'free_text', action: 'delete', encrypted: 'json' },
    },
  },
  blob_deletions: { entity: 'blob_deletion', columns: { blob_key: tech, requested_at: ts } },
  // Backups domain: sealed pre-deletion archives (ciphertext only; destroyed after backupRetentionDays)
  // and the erasure journal (ids and times only).
  backup_archives: {
    entity: 'backup_archive',
    columns: {
      id, customer_id: ref, created_at: ts, expires_at: ts, destroyed_at: ts, blob_key: tech,
      sealed: { personal: false, category: 'secret', action: 'keep' }, size_bytes: tech, key_fingerprint: tech,
      key_epoch_id: ref,
    },
  },
  erasure_journal: {
    entity: 'erasure_journal',
    columns: {
      seq: id, id, kind: state, customer_id: ref, case_id: ref, application_id: ref, actor_key_id: ref, at: ts, recorded_at: ts,
      outcome: state, record_table: state, record_id: ref,
      file_appended_at: ts,
    },
  },
  settings: {
    entity: 'settings',
    columns: {
      id, automatic_personal_data_deletion: state, grace_period_days: state, notification_time: state,
      notification_time_zone: state, backup_retention_days: state, overdue_after_days: state,
      redaction_overrides: state, policy_version: state, updated_at: ts, key_epoch_days: state,
      delete_customer_when_grace_ends: state,
      database_backup_enabled: state, database_backup_time: state, webhook_log_retention_days: state, job_run_retention_days: state,
      idempotency_retention_hours: state,
    },
  },
  // Crypto-shredding (src/crypto): epoch metadata (keys are in the keyring, outside the database),
  // customers' wrapped data keys (destroyed at redaction), and the keyring binding.
  key_epochs: {
    entity: 'key_epoch',
    columns: { id, seq: state, created_at: ts, retired_at: ts, out_of_use_since: ts, destroyed_at: ts },
  },
  customer_keys: {
    entity: 'customer_key',
    columns: { customer_id: ref, epoch_id: ref, wrapped: secret, created_at: ts, wrapped_at: ts },
  },
  crypto_state: {
    entity: 'crypto_state',
    columns: { id, keyring_id: ref, migration_cursor: ref, migration_done_at: ts },
  },
  applications: {
    entity: 'application',
    columns: {
      id, name: state, webhook_url: tech, webhook_secret: { personal: false, category: 'secret', action: 'keep' },
      previous_webhook_secret: { personal: false, category: 'secret', action: 'keep' }, previous_secret_expires_at: ts,
      enabled: state, disabled_reason: state, failing_since: ts, created_at: ts, updated_at: ts,
    },
  },
  api_keys: {
    entity: 'api_key',
    columns: {
      id, kind: state, key_hash: { personal: false, category: 'secret', action: 'keep' }, key_prefix: tech,
      created_by_key_id: ref, created_at: ts, revoked_at: ts,
      // An operator's note about the key ("CI deploy"); operators are not data subjects.
      label: tech, expires_at: ts, last_used_at: ts,
    },
  },
  api_key_applications: { entity: 'api_key_application', columns: { api_key_id: ref, application_id: ref } },
  webhook_outbox: {
    entity: 'webhook',
    columns: {
      id, application_id: ref, case_id: ref, event_type: state,
      // {type, timestamp, data: {subscriptionId, applicationId, reason, requiredSince}}: ids and times only.
      payload: tech,
      status: state, attempts: state, next_attempt_at: ts, lease_owner: tech, lease_until: ts,
      last_status_code: tech, last_error: tech, created_at: ts, delivered_at: ts,
    },
  },
  webhook_deliveries: {
    entity: 'webhook_delivery',
    columns: {
      id, outbox_id: ref, application_id: ref, attempt: state, attempted_at: ts, duration_ms: tech,
      status_code: tech, outcome: state, error: tech,
      // Scrubbed of addresses, numbers and names-like tokens before it is stored; cleared at the customer's deletion.
      response_excerpt: tech,
    },
  },
  deletion_cases: {
    entity: 'deletion_case',
    columns: {
      id, customer_id: ref, application_id: ref, status: state, reason: state, grace_started_at: ts, grace_ends_at: ts,
      required_since: ts, revoked_at: ts, confirmed_at: ts, confirmed_by_key_id: ref, last_notified_day: state,
      last_notified_at: ts, created_at: ts, updated_at: ts, outcome: state,
    },
  },
  // Deployment (issue 11): file contents (profile photos, sealed archives) stored in the database;
  // a photo's row is deleted with its customer's redaction (customers.profile_photo_key).
  stored_files: {
    entity: 'stored_file',
    columns: {
      key: tech, size_bytes: tech, created_at: ts,
      content: { personal: true, category: 'file', action: 'delete' },
    },
  },
  deployment: { entity: 'deployment', columns: { id, key_fingerprint: tech, backup_marker_id: tech, updated_at: ts } },
  // Every run of a job (0015): counts only in `result`, an error code (never a message) in `error`.
  job_runs: {
    entity: 'job_run',
    columns: {
      id, job: state, slot: state, instance_id: tech, started_at: ts, finished_at: ts, outcome: state, trigger: state,
      actor_key_id: ref, result: tech, error: tech,
    },
  },
  deletion_confirmations: {
    entity: 'deletion_confirmation',
    columns: {
      id, case_id: ref, customer_id: ref, application_id: ref, key_id: ref, reason: state, required_since: ts, confirmed_at: ts,
      outcome: state,
    },
  },
  receipt_signing_keys: {
    entity: 'receipt_signing_key',
    columns: { key_id: id, algorithm: tech, public_key: tech, sealed_private_key: { personal: false, category: 'secret', action: 'keep' }, created_at: ts, retired_at: ts },
  },
};

/** Every encrypted column of a table: SQL column → encoding. */
export function encryptedColumns(table: string): Array<[string, Encoding]> {
  const t = DATA_MAP[table];
  if (!t) return [];
  return Object.entries(t.columns).filter(([, c]) => c.encrypted).map(([name, c]) => [name, c.encrypted!]);
}

/** Tables the migration tool owns; not ours to classify. */
export const UNMAPPED_TABLES = new Set(['lethe_migrations', 'lethe_migrations_lock']);

/** snake_case column → the camelCase field the API and Kysely use (memoized: a few hundred names, every row of every request). */
export function toCamel(snake: string): string {
  let k = camelNames.get(snake);
  if (k === undefined) {
    k = snake.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
    if (camelNames.size < 10_000) camelNames.set(snake, k);
  }
  return k;
}
const camelNames = new Map<string, string>();
/** camelCase field → its snake_case column (toCamel's inverse). */
export const toSnake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
