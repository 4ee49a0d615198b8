import { crashPoint } from '../deployment/crash-points.ts';
import { sql } from 'kysely';
import { appendAudit, lockAuditChain } from '../audit/audit.repo.ts';
import type { Principal } from '../auth/api-keys.ts';
import type { Ctx } from '../context.ts';
import type { LicenseObserver } from '../customers/customers.service.ts';
import type { Db } from '../db/database.ts';
import type { Customer } from '../db/schema.ts';
import type { DeletionContext, DeletionStep } from '../erasure/deletion.service.ts';
import { AppError, notFound } from '../http/errors.ts';
import { type Page, type PageQuery, paginate } from '../http/pagination.ts';
import { enqueueWebhook } from '../webhooks/outbox.repo.ts';
import * as repo from './cases.repo.ts';
import type { CaseReason, CaseStatus } from './notifications.tables.ts';
import { isValidTimeZone, localDay } from './schedule.ts';

const DAY_MS = 86_400_000;

export interface CaseView {
  id: string;
  subscriptionId: string;
  applicationId: string;
  status: CaseStatus;
  reason: CaseReason | null;
  graceEndsAt: Date | null;
  requiredSince: Date | null;
  confirmedAt: Date | null;
  confirmedByKeyId: string | null;
  lastNotifiedDay: string | null;
  overdue: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export interface ConfirmationView {
  id: string;
  caseId: string;
  subscriptionId: string;
  applicationId: string;
  reason: CaseReason | null;
  requiredSince: Date | null;
  confirmedAt: Date;
  keyId: string;
}

export interface CaseFilter {
  status?: CaseStatus;
  applicationId?: string;
  subscriptionId?: string;
  overdue?: boolean;
}

export interface BatchOptions { batchSize?: number }

/** The zone the daily notification day is counted in; an unknown zone falls back to UTC. */
export function notificationZone(ctx: Pick<Ctx, 'log'>, zone: string): string {
  if (isValidTimeZone(zone)) return zone;
  ctx.log.warn({ zone }, 'settings.notificationTimeZone is not a known IANA zone; using UTC');
  return 'UTC';
}

export function createCasesService(ctx: Ctx) {
  const { db, clock } = ctx;

  const overdueCutoff = (at: Date, overdueAfterDays: number) => new Date(at.getTime() - overdueAfterDays * DAY_MS);

  function toView(row: repo.CaseRow, cutoff: Date): CaseView {
    return {
      id: row.id, subscriptionId: row.customerId, applicationId: row.applicationId, status: row.status, reason: row.reason,
      graceEndsAt: row.graceEndsAt, requiredSince: row.requiredSince, confirmedAt: row.confirmedAt,
      confirmedByKeyId: row.confirmedByKeyId, lastNotifiedDay: row.lastNotifiedDay,
      overdue: row.status === 'required' && row.requiredSince !== null && row.requiredSince.getTime() < cutoff.getTime(),
      createdAt: row.createdAt, updatedAt: row.updatedAt,
    };
  }

  async function audit(trx: Db, type: string, row: repo.CaseRow, at: Date, actorKeyId: string | null, extra: Record<string, unknown> = {}) {
    await appendAudit(trx, {
      type, actorKeyId, subjectType: 'deletion_case', subjectId: row.id, at,
      data: { subscriptionId: row.customerId, applicationId: row.applicationId, status: row.status, reason: row.reason, ...extra },
    });
  }

  /** Notifies a case that just became required: one outbox row now, counted as today's notification. */
  async function notifyNow(trx: Db, row: repo.CaseRow, at: Date, day: string): Promise<repo.CaseRow> {
    await enqueueWebhook(trx, {
      applicationId: row.applicationId, type: repo.EVENT_TYPE, caseId: row.id, at,
      data: { subscriptionId: row.customerId, applicationId: row.applicationId, reason: row.reason, requiredSince: row.requiredSince },
    });
    return repo.updateCase(trx, row.id, { lastNotifiedDay: day, lastNotifiedAt: at }, at);
  }

  async function zoneOf(trx: Db): Promise<{ settings: repo.NotificationSettings; zone: string }> {
    const settings = await repo.readSettings(trx);
    return { settings, zone: notificationZone(ctx, settings.notificationTimeZone) };
  }

  /** Inside the license's transaction: the pair's last active license is gone. */
  async function licenseCancelled(trx: Db, customerId: string, applicationId: string, at: Date) {
    await repo.lockPair(trx, customerId, applicationId);
    if (await repo.countActiveLicenses(trx, customerId, applicationId) > 0) return;
    const existing = await repo.findCase(trx, customerId, applicationId, true);
    // An open case keeps running: a required case stays required, a grace period is not extended.
    if (existing && (existing.status === 'grace' || existing.status === 'required')) return;
    const { settings, zone } = await zoneOf(trx);
    const graceEndsAt = new Date(at.getTime() + settings.gracePeriodDays * DAY_MS);
    const immediate = settings.gracePeriodDays === 0;
    const fields = {
      status: (immediate ? 'required' : 'grace') as CaseStatus,
      reason: (immediate ? 'grace_expired' : null) as CaseReason | null,
      graceStartedAt: at, graceEndsAt, requiredSince: immediate ? at : null,
      revokedAt: null, confirmedAt: null, confirmedByKeyId: null, lastNotifiedDay: null, lastNotifiedAt: null,
    };
    // A revoked or confirmed case is reopened for a fresh grace period; its confirmations stay in deletion_confirmations.
    let row = existing
      ? await repo.updateCase(trx, existing.id, fields, at)
      : await repo.insertCase(trx, customerId, applicationId, fields, at);
    await audit(trx, 'deletion_case.grace_started', row, at, null, { graceEndsAt: graceEndsAt.toISOString(), reopened: existing !== undefined });
    if (immediate) {
      await audit(trx, 'deletion_case.required', row, at, null);
      row = await notifyNow(trx, row, at, localDay(at, zone));
    }
  }

  /** Inside the license's transaction: a new active license for the pair. */
  async function licenseActivated(trx: Db, customerId: string, applicationId: string, at: Date) {
    await repo.lockPair(trx, customerId, applicationId);
    const existing = await repo.findCase(trx, customerId, applicationId, true);
    // Only a grace period still running is revoked; once required, deletion stays required.
    if (!existing || existing.status !== 'grace' || !existing.graceEndsAt || existing.graceEndsAt.getTime() <= at.getTime()) return;
    const row = await repo.updateCase(trx, existing.id, { status: 'revoked', revokedAt: at }, at);
    await audit(trx, 'deletion_case.revoked', row, at, null);
  }

  const observer: LicenseObserver = { licenseActivated, licenseCancelled };

  /** What a customer deletion does to each application's case (read only). */
  async function plan(trx: Db, customerId: string, applicationIds: string[], lock = false) {
    const out: Array<{ applicationId: string; current: repo.CaseRow | undefined; becomesRequired: boolean; notify: boolean }> = [];
    for (const applicationId of applicationIds) {
      const current = await repo.findCase(trx, customerId, applicationId, lock);
      let becomesRequired = false;
      if (!current || current.status === 'grace' || current.status === 'revoked') becomesRequired = true;
      else if (current.status === 'confirmed') {
        // Confirmed already: only a license granted after the confirmation gives the application data to delete again.
        becomesRequired = current.confirmedAt !== null && await repo.licensedSince(trx, customerId, applicationId, current.confirmedAt);
      }
      out.push({ applicationId, current, becomesRequired, notify: becomesRequired || current?.status === 'required' });
    }
    return out;
  }

  const deletionStep: DeletionStep = {
    name: 'deletionCases',
    phase: 'after',
    async run(trx: Db, c: DeletionContext) {
      const customerId = c.customer.id;
      const applicationIds = [...c.applicationIds].sort();
      const { zone } = await zoneOf(trx);
      const day = localDay(c.at, zone);
      let required = 0;
      let notified = 0;
      for (const applicationId of applicationIds) {
        await repo.lockPair(trx, customerId, applicationId);
        const [p] = await plan(trx, customerId, [applicationId], true);
        let row = p!.current;
        if (p!.becomesRequired) {
          const fields = {
            status: 'required' as const, reason: 'customer_deleted' as const, requiredSince: c.at,
            confirmedAt: null, confirmedByKeyId: null, revokedAt: null,
          };
          row = row ? await repo.updateCase(trx, row.id, fields, c.at) : await repo.insertCase(trx, customerId, applicationId, fields, c.at);
          await audit(trx, 'deletion_case.required', row, c.at, c.actorKeyId);
          required++;
        }
        if (row && row.status === 'required' && row.lastNotifiedDay !== day) {
          await notifyNow(trx, row, c.at, day);
          notified++;
        }
      }
      return { applicationIds, required, notified };
    },
    async preview(pdb: Db, customer: Customer) {
      const rows = await pdb.selectFrom('licenses').select('applicationId').distinct()
        .where('customerId', '=', customer.id).orderBy('applicationId').execute();
      const planned = await plan(pdb, customer.id, rows.map((r) => r.applicationId));
      return {
        applicationIds: planned.filter((p) => p.notify).map((p) => p.applicationId),
        cases: planned.map((p) => ({
          applicationId: p.applicationId, status: p.current?.status ?? null,
          becomes: p.becomesRequired || p.current?.status === 'required' ? 'required' : p.current!.status,
        })),
      };
    },
  };

  /** The grace sweep: every case whose grace period has ended becomes required and is notified at once. */
  async function expireGracePeriods(opts: BatchOptions = {}) {
    const at = clock.now();
    const { zone } = await zoneOf(db);
    const day = localDay(at, zone);
    let total = 0;
    for (;;) {
      const n = await db.transaction().execute(async (trx) => {
        // The chain's lock first, so this batch never waits for it while holding case rows.
        await lockAuditChain(trx);
        const rows = await repo.expireGraceBatch(trx, day, at, opts.batchSize ?? 500);
        for (const r of rows) {
          await appendAudit(trx, {
            type: 'deletion_case.required', actorKeyId: null, subjectType: 'deletion_case', subjectId: r.id, at,
            data: { subscriptionId: r.customerId, applicationId: r.applicationId, status: 'required', reason: 'grace_expired' },
          });
        }
        if (rows.length) crashPoint('grace-sweep'); // test-only: SIGKILL before this batch commits
        return rows.length;
      });
      total += n;
      if (n === 0) break;
    }
    return { required: total, notified: total, day };
  }

  /**
   * The daily notification pass: one webhook for every required case not yet notified on the
   * local calendar day of `at` (or `day`). Safe to run any number of times and on any number of
   * instances at once: a case is notified at most once per day.
   */
  async function notifyDue(opts: BatchOptions & { day?: string; actorKeyId?: string | null } = {}) {
    const at = clock.now();
    const { zone } = await zoneOf(db);
    const day = opts.day ?? localDay(at, zone);
    // Rows per heap page is about 25 (fillfactor 50): a batch of N cases is N / 25 pages.
    const step = Math.max(1, Math.ceil((opts.batchSize ?? 20_000) / 25));
    const pages = await repo.casePages(db);
    let total = 0;
    for (let from = 0; from < pages; from += step) {
      const to = from + step;
      total += await db.transaction().execute((trx) => repo.notifyBatch(trx, day, at, from, to));
      if (total > 0) crashPoint('notification-pass'); // test-only: SIGKILL after a batch committed
    }
    // Then the rest in one statement: pages added during the pass, and rows that were locked by
    // another transaction a moment ago (usually nothing; one sequential scan).
    total += await db.transaction().execute((trx) => repo.notifyBatch(trx, day, at, null, null));
    if (total > 0) {
      await db.transaction().execute((trx) => appendAudit(trx, {
        type: 'deletion_notifications.enqueued', actorKeyId: opts.actorKeyId ?? null, at,
        data: { day, timeZone: zone, enqueued: total },
      }));
    }
    return { day, timeZone: zone, enqueued: total };
  }

  async function list(principal: Principal, filter: CaseFilter, page: PageQuery): Promise<Page<CaseView>> {
    const at = clock.now();
    const settings = await repo.readSettings(db);
    const cutoff = overdueCutoff(at, settings.overdueAfterDays);
    let q = db.selectFrom('deletionCases').selectAll();
    if (principal.kind === 'application') {
      if (filter.applicationId && !principal.applicationIds.includes(filter.applicationId)) {
        throw new AppError('forbidden', 'applicationId is not associated with this key');
      }
      if (principal.applicationIds.length === 0) return { data: [], nextCursor: null };
      q = q.where('applicationId', 'in', principal.applicationIds);
    }
    if (filter.applicationId) q = q.where('applicationId', '=', filter.applicationId);
    if (filter.subscriptionId) q = q.where('customerId', '=', filter.subscriptionId);
    if (filter.status) q = q.where('status', '=', filter.status);
    if (filter.overdue === true) q = q.where('status', '=', 'required').where('requiredSince', '<', cutoff);
    if (filter.overdue === false) {
      q = q.where((eb) => eb.or([eb('status', '!=', 'required'), eb('requiredSince', 'is', null), eb('requiredSince', '>=', cutoff)]));
    }
    const result = await paginate(q, 'deletion_cases', page);
    return { data: result.data.map((r) => toView(r as repo.CaseRow, cutoff)), nextCursor: result.nextCursor };
  }

  function confirmationView(c: {
    id: string; caseId: string; customerId: string; applicationId: string; reason: CaseReason | null;
    requiredSince: Date | null; confirmedAt: Date; keyId: string;
  }): ConfirmationView {
    return {
      id: c.id, caseId: c.caseId, subscriptionId: c.customerId, applicationId: c.applicationId, reason: c.reason,
      requiredSince: c.requiredSince, confirmedAt: c.confirmedAt, keyId: c.keyId,
    };
  }

  /** An application confirms it deleted its copy of a customer's data. Rules: SPEC "Application API". */
  async function confirm(principal: Principal, body: { subscriptionId: string; applicationId?: string }): Promise<ConfirmationView> {
    let applicationId = body.applicationId;
    if (applicationId === undefined) {
      if (principal.applicationIds.length > 1) {
        throw new AppError('application_id_required', 'This key is associated with several applications; send applicationId');
      }
      applicationId = principal.applicationIds[0];
      if (applicationId === undefined) throw new AppError('forbidden', 'This key is not associated with any application');
    } else if (!principal.applicationIds.includes(applicationId)) {
      throw new AppError('forbidden', 'applicationId is not associated with this key');
    }
    const appId = applicationId;
    return db.transaction().execute(async (trx) => {
      const row = await repo.findCase(trx, body.subscriptionId, appId, true);
      if (!row) throw notFound('Deletion case for this subscriptionId and applicationId');
      if (row.status === 'confirmed') {
        const first = await repo.latestConfirmation(trx, row.id);
        if (first) return confirmationView(first);
      }
      if (row.status === 'grace') {
        throw new AppError('deletion_not_required', `The case is inside its grace period until ${row.graceEndsAt?.toISOString() ?? '?'}`);
      }
      if (row.status === 'revoked') {
        throw new AppError('deletion_not_required', 'The customer holds a license for this application again; deletion is not required');
      }
      const at = clock.now();
      const conf = await trx.insertInto('deletionConfirmations').values({
        caseId: row.id, customerId: row.customerId, applicationId: row.applicationId, keyId: principal.keyId,
        reason: row.reason, requiredSince: row.requiredSince, confirmedAt: at,
      }).returningAll().executeTakeFirstOrThrow();
      const updated = await repo.updateCase(trx, row.id, { status: 'confirmed', confirmedAt: at, confirmedByKeyId: principal.keyId }, at);
      await audit(trx, 'deletion_case.confirmed', updated, at, principal.keyId, { confirmationId: conf.id });
      return confirmationView(conf);
    });
  }

  async function refreshGauges() {
    const at = clock.now();
    const settings = await repo.readSettings(db);
    const rows = await db.selectFrom('deletionCases').select(['status', (eb) => eb.fn.countAll<string>().as('n')])
      .groupBy('status').execute();
    for (const s of ['grace', 'required', 'confirmed', 'revoked']) {
      ctx.metrics.casesByState.set({ state: s }, Number(rows.find((r) => r.status === s)?.n ?? 0));
    }
    const overdue = await db.selectFrom('deletionCases').select((eb) => eb.fn.countAll<string>().as('n'))
      .where('status', '=', 'required').where('requiredSince', '<', overdueCutoff(at, settings.overdueAfterDays))
      .executeTakeFirstOrThrow();
    ctx.metrics.overdueCases.set(Number(overdue.n));
  }

  return { observer, deletionStep, expireGracePeriods, notifyDue, list, confirm, refreshGauges };
}

export type CasesService = ReturnType<typeof createCasesService>;
