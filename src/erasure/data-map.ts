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

export interface Column {
  personal: boolean;
  category: Category;
  action: Action;
  /** Identifies the person on its own (name, e-mail, external id): keeping it needs an explicit override. */
  identifying?: boolean;
  /** How a mask keeps the shape; also the shape used when an operator overrides the action to `mask`. */
  mask?: MaskShape;
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
const nullify = (category: Category, identifying = false, shape?: MaskShape): Column =>
  ({ personal: true, category, action: 'nullify', identifying, ...(shape ? { mask: shape } : {}) });
const mask = (category: Category, shape: MaskShape, identifying = false): Column => ({ personal: true, category, action: 'mask', mask: shape, identifying });

const lifecycle = { id, customer_id: ref, created_at: ts, updated_at: ts, deleted_at: ts };

/** Keyed by SQL table, then SQL column. */
export const DATA_MAP: Record<string, TableMap> = {
  customers: {
    entity: 'customer',
    columns: {
      id, created_at: ts, updated_at: ts, deleted_at: ts, redacted_at: ts,
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
      metadata: mask('free_text', 'metadata'),
      legal_hold: state,
      profile_photo_key: { personal: true, category: 'file', action: 'delete', identifying: true, field: 'profilePhoto' },
      profile_photo_content_type: tech,
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
      city: { personal: true, category: 'address', action: 'keep', mask: 'text' },
      country: { personal: true, category: 'address', action: 'keep', mask: 'text' },
    },
  },
  payment_methods: {
    entity: 'payment_method',
    columns: {
      ...lifecycle,
      brand: { personal: false, category: 'payment_card', action: 'keep' },
      card_id: mask('payment_card', 'token', true),
      last4: mask('payment_card', 'digits'),
      exp_month: mask('payment_card', 'month'),
      exp_year: mask('payment_card', 'year'),
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
      details: mask('free_text', 'metadata'),
    },
  },
  audit_events: {
    entity: 'audit_event',
    columns: {
      seq: id, id, type: state, actor_key_id: ref, subject_type: state, subject_id: ref, data: tech,
      created_at: ts, prev_hash: tech, hash: tech,
    },
  },
  deletions: {
    entity: 'deletion',
    columns: {
      customer_id: ref, deleted_at: ts, actor_key_id: ref, counts: tech, preserved_transactions: tech,
      applications_notified: tech, audit_event_id: ref, audit_hash: tech, redaction: tech, backup_id: ref,
    },
  },
  idempotency_keys: {
    entity: 'idempotency_key',
    columns: {
      api_key_id: ref, key: tech, method: tech, path: tech, body_hash: tech, status_code: tech, created_at: ts,
      customer_id: ref,
      // A stored response may repeat the customer's data: purged with the customer.
      response_body: { personal: true, category: 'free_text', action: 'delete' },
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
    },
  },
  erasure_journal: {
    entity: 'erasure_journal',
    columns: {
      seq: id, id, kind: state, customer_id: ref, case_id: ref, application_id: ref, actor_key_id: ref, at: ts, recorded_at: ts,
      file_appended_at: ts,
      outcome: state,
    },
  },
  settings: {
    entity: 'settings',
    columns: {
      id, automatic_personal_data_deletion: state, grace_period_days: state, notification_time: state,
      notification_time_zone: state, backup_retention_days: state, overdue_after_days: state,
      redaction_overrides: state, policy_version: state, updated_at: ts,
      database_backup_enabled: state, database_backup_time: state, webhook_log_retention_days: state, job_run_retention_days: state,
    },
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
  job_runs: { entity: 'job_run', columns: { job: state, slot: state, instance_id: tech, started_at: ts, finished_at: ts, outcome: state } },
  deletion_confirmations: {
    entity: 'deletion_confirmation',
    columns: {
      id, case_id: ref, customer_id: ref, application_id: ref, key_id: ref, reason: state, required_since: ts, confirmed_at: ts,
      outcome: state,
    },
  },
};

/** Tables the migration tool owns; not ours to classify. */
export const UNMAPPED_TABLES = new Set(['lethe_migrations', 'lethe_migrations_lock']);

/** snake_case column → the camelCase field the API and Kysely use. */
export const toCamel = (s: string) => s.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
