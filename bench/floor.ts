// The floor of a customer deletion: the same rows changed as DELETE /v1/customers/{id}, written
// as the fewest hand-tuned SQL statements and run by pgbench (-M prepared). Customers come from
// bench_feed in sequence (bench_floor_seq), with the pseudonym the server would compute.

/** The audit chain's advisory lock, as in src/audit/audit.repo.ts ("LETH"). */
const AUDIT_LOCK = 0x4c455448;

const softDelete = (cte: string, table: string) =>
  `${cte} AS (UPDATE ${table} SET deleted_at = now(), updated_at = now()
      WHERE customer_id = (SELECT id FROM c) AND deleted_at IS NULL RETURNING 1)`;

const cancelAndSoftDelete = (cte: string, table: string, returning: string) =>
  `${cte} AS (UPDATE ${table} SET status = 'cancelled',
        cancelled_at = CASE WHEN status = 'active' THEN now() ELSE cancelled_at END,
        deleted_at = now(), updated_at = now()
      WHERE customer_id = (SELECT id FROM c) AND deleted_at IS NULL
      RETURNING ${returning}cancelled_at = now() AS cancelled)`;

/**
 * Three statements inside BEGIN/END, plus the feed lookup:
 * 1. the whole cascade as one data-modifying CTE (blocker checks, soft deletes, cancellations,
 *    transaction unlinking, the customer.deleted activity entry), returning the counts;
 * 2. the audit chain lock (held to commit, like the server);
 * 3. the hash-chained audit row and the receipt in one statement.
 */
export function floorScript(): string {
  return `
SELECT id AS cid, ref AS cref FROM bench_feed WHERE n = (SELECT nextval('bench_floor_seq'))
\\gset
BEGIN;
WITH c AS (
    UPDATE customers SET deleted_at = now(), updated_at = now()
    WHERE id = :cid AND deleted_at IS NULL AND NOT legal_hold
      AND NOT EXISTS (SELECT 1 FROM transactions WHERE customer_id = :cid AND status = 'pending')
    RETURNING id, email, display_name),
  ${softDelete('ad', 'addresses')},
  ${softDelete('pm', 'payment_methods')},
  ${cancelAndSoftDelete('su', 'subscriptions', '')},
  ${softDelete('me', 'memberships')},
  ${softDelete('si', 'social_identities')},
  ${softDelete('iv', 'invoices')},
  ${softDelete('od', 'orders')},
  ${cancelAndSoftDelete('li', 'licenses', 'application_id, ')},
  tx AS (UPDATE transactions SET customer_id = NULL, customer_ref = :cref, updated_at = now()
      WHERE customer_id = (SELECT id FROM c) RETURNING 1),
  n AS (SELECT jsonb_build_object('customer', (SELECT count(*) FROM c), 'addresses', (SELECT count(*) FROM ad),
        'payment-methods', (SELECT count(*) FROM pm), 'subscriptions', (SELECT count(*) FROM su),
        'memberships', (SELECT count(*) FROM me), 'social-identities', (SELECT count(*) FROM si),
        'invoices', (SELECT count(*) FROM iv), 'orders', (SELECT count(*) FROM od),
        'licenses', (SELECT count(*) FROM li)) AS counts,
      (SELECT count(*) FROM su WHERE cancelled) AS csub, (SELECT count(*) FROM li WHERE cancelled) AS clic,
      (SELECT count(*) FROM tx) AS ntx,
      (SELECT coalesce(jsonb_agg(DISTINCT application_id ORDER BY application_id), '[]') FROM li) AS apps),
  act AS (INSERT INTO activity (customer_id, type, details, created_at)
      SELECT c.id, 'customer.deleted', jsonb_build_object('email', c.email, 'displayName', c.display_name, 'counts', n.counts), now()
      FROM c, n)
SELECT counts, csub, clic, ntx, apps FROM n
\\gset
SELECT pg_advisory_xact_lock(${AUDIT_LOCK});
WITH last AS (SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1),
  d AS (SELECT jsonb_build_object('counts', :counts::jsonb,
          'cancelled', jsonb_build_object('subscriptions', :csub::int, 'licenses', :clic::int),
          'preservedTransactions', :ntx::int, 'applicationsNotified', :apps::jsonb) AS data,
        coalesce((SELECT hash FROM last), repeat('0', 64)) AS prev,
        coalesce((SELECT seq FROM last), 0) + 1 AS seq),
  ev AS (INSERT INTO audit_events (seq, type, actor_key_id, subject_type, subject_id, data, created_at, prev_hash, hash)
      SELECT d.seq, 'customer.deleted', :actor, 'customer', :cid, d.data, now(), d.prev,
        encode(sha256(convert_to(d.prev || E'\\n' || d.data::text, 'UTF8')), 'hex') FROM d
      RETURNING id, hash)
INSERT INTO deletions (customer_id, deleted_at, actor_key_id, counts, preserved_transactions, applications_notified, audit_event_id, audit_hash)
SELECT :cid, now(), :actor,
  :counts::jsonb || jsonb_build_object('cancelledSubscriptions', :csub::int, 'cancelledLicenses', :clic::int),
  :ntx::int, :apps::jsonb, ev.id, ev.hash FROM ev;
END;
`;
}

// `node bench/floor.ts > floor.sql` prints the script, to run pgbench by hand.
if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(floorScript());
