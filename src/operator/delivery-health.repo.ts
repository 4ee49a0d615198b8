import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { DEFAULT_LIMIT, MAX_LIMIT, decodeCursor, encodeCursor, type Page } from '../http/pagination.ts';

/** How the latest webhook of a case (or an endpoint) is doing. */
export interface DeliveryHealth {
  webhookId: string;
  eventType: string;
  /** pending | delivered | failed (the outbox row) */
  status: string;
  attempts: number;
  lastOutcome: string | null;
  lastStatusCode: number | null;
  lastError: string | null;
  lastAttemptAt: Date | null;
  /** When the dispatcher tries again (pending rows only). */
  nextRetryAt: Date | null;
  /** Scrubbed excerpt of the last failed response (see src/webhooks/excerpt.ts). */
  responseExcerpt: string | null;
  /** The latest attempt did not deliver and the webhook is not delivered. */
  failing: boolean;
}

export interface CaseDeliveryHealth extends DeliveryHealth {
  caseId: string;
  subscriptionId: string;
  applicationId: string;
  caseStatus: string;
}

/** A row where an outbox row with its last attempt is failing. */
const FAILING = sql<boolean>`(o.status = 'failed' OR (o.status = 'pending' AND o.attempts > 0))`;

function health(r: Record<string, unknown>): DeliveryHealth {
  const status = String(r.status);
  const failing = status === 'failed' || (status === 'pending' && Number(r.attempts) > 0);
  return {
    webhookId: String(r.webhookId), eventType: String(r.eventType), status, attempts: Number(r.attempts),
    lastOutcome: (r.lastOutcome as string | null) ?? null,
    lastStatusCode: r.lastStatusCode === null || r.lastStatusCode === undefined ? null : Number(r.lastStatusCode),
    lastError: (r.lastError as string | null) ?? null,
    lastAttemptAt: r.lastAttemptAt ? new Date(r.lastAttemptAt as string) : null,
    nextRetryAt: status === 'pending' && r.nextAttemptAt ? new Date(r.nextAttemptAt as string) : null,
    responseExcerpt: (r.responseExcerpt as string | null) ?? null,
    failing,
  };
}

const LAST_ATTEMPT = sql`LEFT JOIN LATERAL (
    SELECT d.outcome, d.attempted_at, d.response_excerpt FROM webhook_deliveries d
    WHERE d.outbox_id = o.id ORDER BY d.attempted_at DESC, d.id DESC LIMIT 1) la ON true`;

/**
 * The latest webhook of each deletion case (cases never notified are left out), newest case
 * activity first; `failing` keeps only cases whose latest webhook is failing.
 */
export async function caseDeliveryHealth(db: Db, q: { applicationId?: string; failing?: boolean; caseIds?: string[]; limit?: number; cursor?: string }): Promise<Page<CaseDeliveryHealth>> {
  const limit = Math.min(q.limit ?? DEFAULT_LIMIT, MAX_LIMIT);
  const c = q.cursor ? decodeCursor(q.cursor) : null;
  const r = await sql<Record<string, unknown>>`
    SELECT * FROM (
      SELECT DISTINCT ON (o.case_id) o.case_id AS "caseId", dc.customer_id AS "subscriptionId", o.application_id AS "applicationId",
        dc.status AS "caseStatus", o.id AS "webhookId", o.event_type AS "eventType", o.status, o.attempts,
        o.next_attempt_at AS "nextAttemptAt", o.last_status_code AS "lastStatusCode", o.last_error AS "lastError",
        o.created_at AS "createdAt", la.outcome AS "lastOutcome", la.attempted_at AS "lastAttemptAt", la.response_excerpt AS "responseExcerpt",
        ${FAILING} AS failing
      FROM webhook_outbox o
      JOIN deletion_cases dc ON dc.id = o.case_id
      ${LAST_ATTEMPT}
      WHERE o.case_id IS NOT NULL
        ${q.applicationId ? sql`AND o.application_id = ${q.applicationId}` : sql``}
        ${q.caseIds ? sql`AND o.case_id IN (${sql.join(q.caseIds.length ? q.caseIds : ['00000000-0000-0000-0000-000000000000'])})` : sql``}
      ORDER BY o.case_id, o.created_at DESC, o.id DESC
    ) x
    WHERE true ${q.failing === true ? sql`AND x.failing` : q.failing === false ? sql`AND NOT x.failing` : sql``}
      ${c ? sql`AND (x."createdAt", x."caseId") < (${new Date(c.t)}, ${c.id}::uuid)` : sql``}
    ORDER BY x."createdAt" DESC, x."caseId" DESC
    LIMIT ${limit + 1}`.execute(db);
  const rows = r.rows.slice(0, limit);
  const data = rows.map((row) => ({
    caseId: String(row.caseId), subscriptionId: String(row.subscriptionId), applicationId: String(row.applicationId),
    caseStatus: String(row.caseStatus), ...health(row),
  }));
  const last = rows[rows.length - 1];
  return { data, nextCursor: r.rows.length > limit && last ? encodeCursor(new Date(last.createdAt as string), String(last.caseId)) : null };
}

/** An endpoint's health: its state, its latest attempt, what waits and when it goes next. */
export async function applicationDeliveryHealth(db: Db, applicationId: string) {
  const r = await sql<Record<string, unknown>>`
    SELECT a.enabled, a.disabled_reason AS "disabledReason", a.failing_since AS "failingSince",
      (SELECT count(*) FROM webhook_outbox o WHERE o.application_id = a.id AND o.status = 'pending') AS pending,
      (SELECT count(*) FROM webhook_outbox o WHERE o.application_id = a.id AND ${FAILING}) AS failing,
      (SELECT min(o.next_attempt_at) FROM webhook_outbox o WHERE o.application_id = a.id AND o.status = 'pending') AS "nextRetryAt"
    FROM applications a WHERE a.id = ${applicationId}`.execute(db);
  const row = r.rows[0];
  if (!row) return undefined;
  const last = await sql<Record<string, unknown>>`
    SELECT o.id AS "webhookId", o.event_type AS "eventType", o.status, o.attempts, o.next_attempt_at AS "nextAttemptAt",
      o.last_status_code AS "lastStatusCode", o.last_error AS "lastError",
      d.outcome AS "lastOutcome", d.attempted_at AS "lastAttemptAt", d.response_excerpt AS "responseExcerpt"
    FROM webhook_deliveries d JOIN webhook_outbox o ON o.id = d.outbox_id
    WHERE d.application_id = ${applicationId} ORDER BY d.attempted_at DESC, d.id DESC LIMIT 1`.execute(db);
  return {
    applicationId,
    enabled: Boolean(row.enabled),
    disabledReason: (row.disabledReason as string | null) ?? null,
    failingSince: row.failingSince ? new Date(row.failingSince as string) : null,
    pending: Number(row.pending), failing: Number(row.failing),
    nextRetryAt: row.nextRetryAt ? new Date(row.nextRetryAt as string) : null,
    last: last.rows[0] ? health(last.rows[0]) : null,
  };
}

/**
 * Clears the response excerpts of every webhook about the customer's cases (at the customer's
 * deletion): the statement, which the deletion runs inside its last one (DeletionContext.deferredWrites).
 */
export function customerExcerptsClear(customerId: string) {
  // Parenthesized: a raw CTE body is written as given.
  return sql<Record<string, never>>`(
    UPDATE webhook_deliveries SET response_excerpt = NULL
    WHERE response_excerpt IS NOT NULL AND outbox_id IN (
      SELECT o.id FROM webhook_outbox o JOIN deletion_cases c ON c.id = o.case_id WHERE c.customer_id = ${customerId}))`;
}
