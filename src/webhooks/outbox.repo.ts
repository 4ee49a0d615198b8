import crypto from 'node:crypto';
import type { Db } from '../db/database.ts';
import type { WebhookPayload } from './webhooks.tables.ts';

export interface NewWebhook {
  applicationId: string;
  type: string;
  data: Record<string, unknown>;
  caseId?: string | null;
  at: Date;
}

/**
 * Writes a webhook into the outbox inside the caller's transaction: it is sent if and only if
 * the cause commits. Returns the `webhook-id`.
 */
export async function enqueueWebhook(trx: Db, w: NewWebhook): Promise<string> {
  const id = `msg_${crypto.randomUUID().replaceAll('-', '')}`;
  const payload: WebhookPayload = { type: w.type, timestamp: w.at.toISOString(), data: w.data };
  await trx.insertInto('webhookOutbox').values({
    id, applicationId: w.applicationId, caseId: w.caseId ?? null, eventType: w.type,
    payload: JSON.stringify(payload), nextAttemptAt: w.at, leaseOwner: null, leaseUntil: null,
    lastStatusCode: null, lastError: null, createdAt: w.at, deliveredAt: null,
  }).execute();
  return id;
}
