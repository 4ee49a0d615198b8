// The floor of a customer deletion: the same rows changed as DELETE /v1/customers/{id} (with
// the default settings), written as the fewest hand-tuned SQL statements and run by pgbench
// (-M prepared). Customers come from bench_feed in sequence (bench_floor_seq), with the pseudonym
// the server would compute. The redaction expressions are the server's own (src/erasure/
// masking.ts over the data map's default policy), compiled to SQL text, so both mask alike.
//
// Per deletion: 1 feed lookup, then BEGIN; one statement for everything but the audit chain;
// the audit lock; one statement for the chained audit rows and the receipt; COMMIT; then the
// archive's "moved to the blob store" update (the server does it after commit too).
// Not in the floor (no SQL equivalent): writing the sealed archive file and appending+fsyncing
// the erasure-journal file, both done by the server after commit.
import {
  DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler, type RawBuilder,
} from 'kysely';
import { maskSql, nullifySql } from '../src/erasure/masking.sql.ts';
import { defaultPolicy, POLICY_FIELDS } from '../src/erasure/redaction-policy.ts';

/** The audit chain's advisory lock, as in src/audit/audit.repo.ts ("LETH"). */
const AUDIT_LOCK = 0x4c455448;

const compiler = new Kysely<any>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

function toSql(raw: RawBuilder<unknown>): string {
  const q = raw.compile(compiler);
  if (q.parameters.length > 0) throw new Error(`floor: expression has parameters: ${q.sql}`);
  return q.sql;
}

/** SET clauses of the default redaction policy, per table. */
function redactionSets(): Map<string, string[]> {
  const policy = defaultPolicy();
  const out = new Map<string, string[]>();
  for (const f of POLICY_FIELDS) {
    const action = policy[f.key];
    const sets = out.get(f.sqlTable) ?? [];
    if (f.column.category === 'file') {
      if (action === 'delete') {
        sets.push(`${f.sqlColumn} = NULL`);
        if (f.sqlTable === 'customers') sets.push('profile_photo_content_type = NULL');
      }
    } else if (action === 'nullify') {
      sets.push(`${f.sqlColumn} = ${toSql(nullifySql(f.column.mask))}`);
    } else if (action === 'mask' && f.column.mask) {
      sets.push(`${f.sqlColumn} = ${toSql(maskSql(f.column.mask, f.sqlColumn))}`);
    }
    out.set(f.sqlTable, sets);
  }
  return out;
}

// pgbench reads ":name" as a variable even inside string literals, so the colons of the
// ISO-8601 time are put in with chr(58).
const ISO_NOW = `translate(to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24#MI#SS.MS"Z"'), '#', chr(58))`;
const COLLECTIONS: Array<{ cte: string; table: string; path: string; cancel?: boolean }> = [
  { cte: 'ad', table: 'addresses', path: 'addresses' },
  { cte: 'pm', table: 'payment_methods', path: 'payment-methods' },
  { cte: 'su', table: 'subscriptions', path: 'subscriptions', cancel: true },
  { cte: 'me', table: 'memberships', path: 'memberships' },
  { cte: 'si', table: 'social_identities', path: 'social-identities' },
  { cte: 'iv', table: 'invoices', path: 'invoices' },
  { cte: 'od', table: 'orders', path: 'orders' },
  { cte: 'li', table: 'licenses', path: 'licenses', cancel: true },
];

export interface FloorOptions {
  /** A SQL expression sealing the bytea `x` (pgcrypto's encrypt when available). */
  seal: (x: string) => string;
}

/** The pgbench script. */
export function floorScript(o: FloorOptions = { seal: (x) => x }): string {
  const sets = redactionSets();
  const mask = (shape: 'email' | 'name') => toSql(maskSql(shape, 'x'));
  // Soft delete (+ cancel) + redaction of each collection in one UPDATE per table.
  const collection = (c: typeof COLLECTIONS[number]) => `${c.cte} AS (UPDATE ${c.table} SET deleted_at = now(), updated_at = now()${
    c.cancel ? `, status = 'cancelled', cancelled_at = CASE WHEN status = 'active' THEN now() ELSE cancelled_at END` : ''}${
    (sets.get(c.table) ?? []).map((s) => `,\n        ${s}`).join('')}
      WHERE customer_id = (SELECT id FROM c) AND deleted_at IS NULL
      RETURNING ${c.table === 'licenses' ? 'application_id, ' : ''}${c.cancel ? 'cancelled_at = now()' : 'true'} AS cancelled)`;
  const list = (table: string) => `(SELECT coalesce(jsonb_agg(to_jsonb(r) - 'deleted_at' ORDER BY r.created_at, r.id), '[]')
        FROM ${table} r WHERE r.customer_id = :cid::uuid AND r.deleted_at IS NULL)`;
  const policyJson = JSON.stringify(defaultPolicy()).replaceAll("'", "''");

  return `
SELECT id AS cid, ref AS cref FROM bench_feed WHERE n = (SELECT nextval('bench_floor_seq'))
\\gset
BEGIN;
WITH c AS (
    UPDATE customers SET deleted_at = now(), updated_at = now(), redacted_at = now(),
        ${(sets.get('customers') ?? []).join(',\n        ')}
    WHERE id = :cid::uuid AND deleted_at IS NULL AND NOT legal_hold
      AND NOT EXISTS (SELECT 1 FROM transactions WHERE customer_id = :cid::uuid AND status = 'pending')
    RETURNING id),
  -- The sealed pre-deletion archive: the data-subject export, read from the statement's snapshot
  -- (before any change), sealed, stored in its row.
  doc AS (SELECT jsonb_build_object('format', 'lethe.subject-export/v1', 'customerId', :cid::uuid, 'exportedAt', ${ISO_NOW},
      'profile', (SELECT to_jsonb(x) - 'deleted_at' - 'redacted_at' FROM customers x WHERE x.id = :cid::uuid),
      'collections', jsonb_build_object(${[...COLLECTIONS.map((c) => [c.path, c.table] as const), ['transactions', 'transactions'] as const]
        .map(([p, t]) => `'${p}', ${t === 'transactions'
          ? `(SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.created_at, r.id), '[]') FROM transactions r WHERE r.customer_id = :cid::uuid)`
          : list(t)}`).join(',\n        ')}),
      'activity', (SELECT coalesce(jsonb_agg(to_jsonb(a) ORDER BY a.created_at, a.id), '[]') FROM activity a WHERE a.customer_id = :cid::uuid),
      'deletionCases', (SELECT coalesce(jsonb_agg(to_jsonb(k)), '[]') FROM deletion_cases k WHERE k.customer_id = :cid::uuid)) AS d),
  ba AS (INSERT INTO backup_archives (customer_id, created_at, expires_at, sealed, size_bytes, key_fingerprint, key_epoch_id)
      SELECT c.id, now(), now() + (SELECT backup_retention_days FROM settings WHERE id = 1) * interval '1 day', s.sealed, length(s.sealed), 'bench',
        (SELECT id FROM key_epochs WHERE retired_at IS NULL AND destroyed_at IS NULL ORDER BY seq DESC LIMIT 1)
      FROM c, (SELECT ${o.seal(`convert_to(d::text, 'UTF8')`)} AS sealed FROM doc) s
      RETURNING id, expires_at),
  -- Crypto-shredding: the customer's data key goes with the redaction.
  ck AS (DELETE FROM customer_keys WHERE customer_id = :cid::uuid RETURNING epoch_id),
  bd AS (INSERT INTO blob_deletions (blob_key, requested_at)
      SELECT profile_photo_key, now() FROM customers WHERE id = (SELECT id FROM c) AND profile_photo_key IS NOT NULL
      ON CONFLICT DO NOTHING),
  ${COLLECTIONS.map(collection).join(',\n  ')},
  tx AS (UPDATE transactions SET customer_id = NULL, customer_ref = :cref::text, updated_at = now()
      WHERE customer_id = (SELECT id FROM c) RETURNING 1),
  n AS (SELECT jsonb_build_object('customer', (SELECT count(*) FROM c), ${COLLECTIONS.map((c) => `'${c.path}', (SELECT count(*) FROM ${c.cte})`).join(', ')}) AS counts,
      (SELECT count(*) FROM su WHERE cancelled) AS csub, (SELECT count(*) FROM li WHERE cancelled) AS clic,
      (SELECT count(*) FROM tx) AS ntx),
  -- Every application the customer ever held a license for (read from the snapshot).
  apps AS (SELECT DISTINCT application_id FROM licenses WHERE customer_id = :cid::uuid AND EXISTS (SELECT 1 FROM c)),
  -- The activity log goes, except the customer.deleted entry, written with masked details.
  pa AS (DELETE FROM activity WHERE customer_id = (SELECT id FROM c)),
  act AS (INSERT INTO activity (customer_id, type, details, created_at)
      SELECT c.id, 'customer.deleted', jsonb_build_object('email', (SELECT ${mask('email')} FROM (SELECT '' AS x) v),
        'displayName', (SELECT ${mask('name')} FROM (SELECT '' AS x) v), 'counts', n.counts), now()
      FROM c, n),
  ik AS (UPDATE idempotency_keys SET response_body = NULL
      WHERE response_body IS NOT NULL AND response_body <> 'null'::jsonb AND EXISTS (SELECT 1 FROM c)
        AND (customer_id = :cid::uuid OR response_body->>'customerId' = :cid::uuid::text OR response_body->>'id' = :cid::uuid::text)),
  -- Deletion cases become required at once and are notified (one outbox row each).
  dc AS (INSERT INTO deletion_cases (customer_id, application_id, status, reason, required_since, last_notified_day,
        last_notified_at, created_at, updated_at)
      SELECT :cid::uuid, application_id, 'required', 'customer_deleted', now(),
        to_char(now() AT TIME ZONE (SELECT notification_time_zone FROM settings WHERE id = 1), 'YYYY-MM-DD'), now(), now(), now()
      FROM apps
      ON CONFLICT (customer_id, application_id) DO UPDATE SET status = 'required', reason = 'customer_deleted',
        required_since = now(), confirmed_at = NULL, confirmed_by_key_id = NULL, revoked_at = NULL,
        last_notified_day = excluded.last_notified_day, last_notified_at = now(), updated_at = now()
      RETURNING id, application_id),
  ob AS (INSERT INTO webhook_outbox (id, application_id, case_id, event_type, payload, next_attempt_at, created_at)
      SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), application_id, id, 'data_deletion.required',
        jsonb_build_object('type', 'data_deletion.required', 'timestamp', ${ISO_NOW}, 'data', jsonb_build_object(
          'subscriptionId', :cid::uuid::text, 'applicationId', application_id::text, 'reason', 'customer_deleted', 'requiredSince', ${ISO_NOW})),
        now(), now()
      FROM dc),
  ej AS (INSERT INTO erasure_journal (id, kind, customer_id, actor_key_id, at, recorded_at, file_appended_at)
      SELECT gen_random_uuid(), 'deletion', id, :actor::uuid, now(), now(), now() FROM c)
SELECT n.counts, n.csub, n.clic, n.ntx, (SELECT id FROM ba) AS archive,
  (SELECT coalesce(jsonb_agg(application_id ORDER BY application_id), '[]') FROM apps) AS apps,
  (SELECT jsonb_build_array(jsonb_build_object('type', 'backup.archive_created', 'subjectType', 'backup_archive', 'subjectId', id,
      'data', jsonb_build_object('customerId', :cid::uuid, 'expiresAt', expires_at))) FROM ba)
    || (SELECT coalesce(jsonb_agg(jsonb_build_object('type', 'deletion_case.required', 'subjectType', 'deletion_case', 'subjectId', id,
      'data', jsonb_build_object('subscriptionId', :cid::uuid, 'applicationId', application_id, 'status', 'required', 'reason', 'customer_deleted'))
      ORDER BY application_id), '[]') FROM dc)
    || jsonb_build_array(jsonb_build_object('type', 'customer.deleted', 'subjectType', 'customer', 'subjectId', :cid::uuid,
      'data', jsonb_build_object('counts', n.counts, 'cancelled', jsonb_build_object('subscriptions', n.csub, 'licenses', n.clic),
        'preservedTransactions', n.ntx,
        'applicationsNotified', (SELECT coalesce(jsonb_agg(application_id ORDER BY application_id), '[]') FROM apps)))) AS events,
  -- The epoch that wrapped the destroyed key, or '' when the customer had none (a variable cannot hold NULL).
  coalesce((SELECT epoch_id::text FROM ck), '') AS kepoch
FROM n
\\gset
SELECT pg_advisory_xact_lock(${AUDIT_LOCK});
WITH RECURSIVE last AS (SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1),
  evs AS (SELECT e.ev, e.i FROM jsonb_array_elements(:events::jsonb) WITH ORDINALITY AS e(ev, i)),
  chain(i, seq, prev, hash) AS (
      SELECT e.i, coalesce((SELECT seq FROM last), 0) + 1, p.prev,
        encode(sha256(convert_to(p.prev || E'\\n' || e.ev::text, 'UTF8')), 'hex')
      FROM (SELECT coalesce((SELECT hash FROM last), repeat('0', 64)) AS prev) p, evs e WHERE e.i = 1
    UNION ALL
      SELECT e.i, ch.seq + 1, ch.hash, encode(sha256(convert_to(ch.hash || E'\\n' || e.ev::text, 'UTF8')), 'hex')
      FROM chain ch JOIN evs e ON e.i = ch.i + 1),
  ins AS (INSERT INTO audit_events (seq, type, actor_key_id, subject_type, subject_id, data, created_at, prev_hash, hash)
      SELECT ch.seq, e.ev->>'type', :actor::uuid, e.ev->>'subjectType', (e.ev->>'subjectId')::uuid, e.ev->'data', now(), ch.prev, ch.hash
      FROM chain ch JOIN evs e ON e.i = ch.i
      RETURNING id, hash, type)
INSERT INTO deletions (customer_id, deleted_at, actor_key_id, counts, preserved_transactions, applications_notified,
    audit_event_id, audit_hash, redaction, backup_id, key_destroyed_at, key_epoch_id)
SELECT :cid::uuid, now(), :actor::uuid,
  :counts::jsonb || jsonb_build_object('cancelledSubscriptions', :csub::int, 'cancelledLicenses', :clic::int),
  :ntx::int, :apps::jsonb, ins.id, ins.hash,
  jsonb_build_object('ran', true, 'via', 'deletion', 'redactedAt', ${ISO_NOW},
    'policyVersion', (SELECT policy_version FROM settings WHERE id = 1), 'policy', '${policyJson}'::jsonb),
  :archive::uuid, CASE WHEN :kepoch::text = '' THEN NULL ELSE now() END, NULLIF(:kepoch::text, '')::uuid
FROM ins WHERE ins.type = 'customer.deleted';
END;
UPDATE backup_archives SET blob_key = 'archives/' || id, sealed = NULL WHERE id = :archive::uuid AND blob_key IS NULL;
`;
}

// `node bench/floor.ts > floor.sql` prints the script, to run pgbench by hand.
if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(floorScript());
