import { appendAudit } from '../audit/audit.repo.ts';
import type { Principal } from '../auth/api-keys.ts';
import type { Ctx } from '../context.ts';
import { appendActivity } from '../customers/activity.repo.ts';
import { collectionByTable } from '../customers/collections.ts';
import { findLiveCustomer, findRecord, updateCustomer, updateRecord } from '../customers/customers.repo.ts';
import { AppError, notFound } from '../http/errors.ts';
import { findApplication, findForUpdate as findApplicationForUpdate, updateApplication } from '../applications/applications.repo.ts';
import { toApplicationView } from '../applications/applications.service.ts';
import type { LicenseObserver } from '../plugin/registry.ts';
import { enqueueWebhook } from '../webhooks/outbox.repo.ts';
import { findWebhookForUpdate, requeueWebhook } from './operator.repo.ts';

export interface Reasoned { reason: string; note?: string | undefined }

/**
 * Consequential operator actions with a chosen reason (audited, ids and codes only) and an
 * optional note (the customer's activity log, never the audit log); retry now and test webhooks.
 */
export function createOperatorService(ctx: Ctx, deps: { licenseObservers: () => readonly LicenseObserver[]; wake: () => void }) {
  const { wake } = deps;
  const { db, clock } = ctx;
  const note = (n: string | undefined) => (n && n.trim() ? { note: n.trim() } : {});

  return {
    async setLegalHold(principal: Principal, customerId: string, on: boolean, r: Reasoned) {
      return db.transaction().execute(async (trx) => {
        const c = await findLiveCustomer(trx, customerId, 'update');
        if (!c) throw notFound('Customer');
        const at = clock.now();
        if (c.legalHold !== on) await updateCustomer(trx, ctx.crypto, customerId, { legalHold: on }, at);
        await appendAudit(trx, { type: on ? 'customer.legal_hold_placed' : 'customer.legal_hold_lifted', actorKeyId: principal.keyId,
          subjectType: 'customer', subjectId: customerId, at, data: { reason: r.reason, changed: c.legalHold !== on } });
        await appendActivity(trx, ctx.crypto, { customerId, type: on ? 'customer.legal_hold_placed' : 'customer.legal_hold_lifted', at,
          details: { reason: r.reason, ...note(r.note) } });
        return { customerId, legalHold: on };
      });
    },

    async cancelLicense(principal: Principal, licenseId: string, r: Reasoned) {
      const def = collectionByTable.get('licenses')!;
      return db.transaction().execute(async (trx) => {
        const found = await findRecord(trx, ctx.crypto, def, licenseId);
        if (!found) throw notFound('License');
        const customerId = String(found.customerId);
        if (!await findLiveCustomer(trx, customerId, 'share')) throw notFound('License');
        const record = await findRecord(trx, ctx.crypto, def, licenseId, true);
        if (!record) throw notFound('License');
        if (record.status === 'cancelled') return record;
        const at = clock.now();
        const updated = await updateRecord(trx, ctx.crypto, def, licenseId, { status: 'cancelled', cancelledAt: at }, at);
        await appendActivity(trx, ctx.crypto, { customerId, type: 'license.cancelled', recordId: licenseId, at, details: { reason: r.reason, ...note(r.note) } });
        await appendAudit(trx, { type: 'license.cancelled', actorKeyId: principal.keyId, subjectType: 'license', subjectId: licenseId, at,
          data: { customerId, applicationId: String(record.applicationId), reason: r.reason } });
        for (const o of deps.licenseObservers()) await o.licenseCancelled(trx, customerId, String(record.applicationId), at);
        return updated;
      });
    },

    async disableEndpoint(principal: Principal, applicationId: string, reason: string) {
      return db.transaction().execute(async (trx) => {
        const a = await findApplicationForUpdate(trx, applicationId);
        if (!a) throw notFound('Application');
        if (!a.enabled) return toApplicationView(a);
        const at = clock.now();
        const updated = await updateApplication(trx, applicationId, { enabled: false, disabledReason: 'operator', updatedAt: at });
        await appendAudit(trx, { type: 'application.disabled', actorKeyId: principal.keyId, subjectType: 'application', subjectId: applicationId, at,
          data: { reason: 'operator', reasonCode: reason } });
        return toApplicationView(updated);
      });
    },

    /** Sends a pending or failed webhook now, under its own webhook-id (not a new notice). */
    async retryNow(principal: Principal, applicationId: string, webhookId: string) {
      const result = await db.transaction().execute(async (trx) => {
        const row = await findWebhookForUpdate(trx, applicationId, webhookId);
        if (!row) throw notFound('Webhook');
        const at = clock.now();
        if (row.status === 'delivered') throw new AppError('conflict', 'This webhook was delivered; there is nothing to retry');
        if (row.leaseUntil && row.leaseUntil > at) throw new AppError('conflict', 'This webhook is being sent right now');
        await requeueWebhook(trx, webhookId, at);
        await appendAudit(trx, { type: 'webhook.retry_requested', actorKeyId: principal.keyId, subjectType: 'application', subjectId: applicationId, at,
          data: { webhookId, previousStatus: row.status, attempts: row.attempts } });
        return { webhookId, status: 'pending' as const, nextAttemptAt: at };
      });
      wake();
      return result;
    },

    /** Enqueues a `webhook.test` event: delivered and logged like any webhook, never counted as a notice. */
    async sendTest(principal: Principal, applicationId: string) {
      const result = await db.transaction().execute(async (trx) => {
        const a = await findApplication(trx, applicationId);
        if (!a) throw notFound('Application');
        if (!a.webhookUrl) throw new AppError('validation_failed', 'This application has no webhook URL to send to');
        const at = clock.now();
        const webhookId = await enqueueWebhook(trx, { applicationId, type: 'webhook.test', data: { applicationId }, caseId: null, at });
        await appendAudit(trx, { type: 'webhook.test_sent', actorKeyId: principal.keyId, subjectType: 'application', subjectId: applicationId, at,
          data: { webhookId } });
        return { webhookId, status: 'pending' as const, nextAttemptAt: at };
      });
      wake();
      return result;
    },
  };
}

export type OperatorService = ReturnType<typeof createOperatorService>;
