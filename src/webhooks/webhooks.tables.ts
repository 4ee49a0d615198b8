import type { Generated } from 'kysely';
import type { Json, Timestamp } from '../db/schema.ts';

export interface WebhookOutboxTable {
  /** The Standard Webhooks `webhook-id`: stable across retries of this row. */
  id: string;
  applicationId: string;
  caseId: string | null;
  eventType: string;
  /** The exact JSON body that is signed and sent: {type, timestamp, data}. */
  payload: Json<WebhookPayload>;
  status: Generated<'pending' | 'delivered' | 'failed'>;
  attempts: Generated<number>;
  nextAttemptAt: Timestamp;
  leaseOwner: string | null;
  leaseUntil: Timestamp | null;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: Timestamp;
  deliveredAt: Timestamp | null;
}

export interface WebhookDeliveriesTable {
  id: Generated<string>;
  outboxId: string;
  applicationId: string;
  attempt: number;
  attemptedAt: Timestamp;
  durationMs: number;
  statusCode: number | null;
  /** delivered | failed | timeout | network_error | refused (SSRF guard) | gone (410) */
  outcome: string;
  error: string | null;
  /** A short excerpt of a failed response, scrubbed of personal data (delivery health). */
  responseExcerpt: Generated<string | null>;
}

export interface WebhookPayload {
  type: string;
  timestamp: string;
  data: Record<string, unknown>;
}

export interface WebhookTables {
  webhookOutbox: WebhookOutboxTable;
  webhookDeliveries: WebhookDeliveriesTable;
}
