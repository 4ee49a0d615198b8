import { appendAudit } from '../audit/audit.repo.ts';
import type { Ctx } from '../context.ts';
import type { Db } from '../db/database.ts';
import { enqueueWebhook, type NewWebhook } from '../webhooks/outbox.repo.ts';
import * as repo from './cases.repo.ts';
import { isValidTimeZone } from './schedule.ts';

/** What the three parts of the cases domain (lifecycle, daily pass, application API) share. */

/** The zone the daily notification day is counted in; an unknown zone falls back to UTC. */
export function notificationZone(ctx: Pick<Ctx, 'log'>, zone: string): string {
  if (isValidTimeZone(zone)) return zone;
  ctx.log.warn({ zone }, 'settings.notificationTimeZone is not a known IANA zone; using UTC');
  return 'UTC';
}

/** The notifications section of the settings, and the zone its day is counted in. */
export async function zoneOf(ctx: Pick<Ctx, 'log'>, trx: Db): Promise<{ settings: repo.NotificationSettings; zone: string }> {
  const settings = await repo.readSettings(trx);
  return { settings, zone: notificationZone(ctx, settings.notificationTimeZone) };
}

/** The audit event of a case change, in the change's transaction. */
export async function auditCase(trx: Db, type: string, row: repo.CaseRow, at: Date, actorKeyId: string | null, extra: Record<string, unknown> = {}) {
  await appendAudit(trx, {
    type, actorKeyId, subjectType: 'deletion_case', subjectId: row.id, at,
    data: { subscriptionId: row.customerId, applicationId: row.applicationId, status: row.status, reason: row.reason, ...extra },
  });
}

/** Notifies a case that just became required: one outbox row now, counted as today's notification. */
export async function notifyNow(trx: Db, row: repo.CaseRow, at: Date, day: string): Promise<repo.CaseRow> {
  await enqueueWebhook(trx, notice(row, at));
  return repo.updateCase(trx, row.id, { lastNotifiedDay: day, lastNotifiedAt: at }, at);
}

/** The `data_deletion.required` webhook of a required case. */
export function notice(row: repo.CaseRow, at: Date): NewWebhook {
  return {
    applicationId: row.applicationId, type: repo.EVENT_TYPE, caseId: row.id, at,
    data: { subscriptionId: row.customerId, applicationId: row.applicationId, reason: row.reason, requiredSince: row.requiredSince },
  };
}
