import type { Principal } from '../auth/api-keys.ts';
import type { Ctx } from '../context.ts';
import { AppError, notFound } from '../http/errors.ts';
import { DEFAULT_LIMIT, MAX_LIMIT, decodeCursor, encodeCursor, type Page, type PageQuery } from '../http/pagination.ts';
import type { Ports } from '../plugin/registry.ts';
import { auditCase } from './case-events.ts';
import * as repo from './cases.repo.ts';
import type { CaseReason, CaseStatus, ConfirmationOutcome } from './notifications.tables.ts';

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
  /** The outcome of the confirmation that closed the case; null unless confirmed. */
  outcome: ConfirmationOutcome | null;
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
  outcome: ConfirmationOutcome;
}

export type CaseFilter = repo.CaseFilter;

export interface CasesDeps {
  /** The erasure journal (backups domain): records each confirmation inside its transaction. */
  journal: () => Ports['erasureJournal'];
}

function toView(row: repo.CaseRow & { overdue: boolean }): CaseView {
  return {
    id: row.id, subscriptionId: row.customerId, applicationId: row.applicationId, status: row.status, reason: row.reason,
    graceEndsAt: row.graceEndsAt, requiredSince: row.requiredSince, confirmedAt: row.confirmedAt,
    confirmedByKeyId: row.confirmedByKeyId, lastNotifiedDay: row.lastNotifiedDay, outcome: row.outcome, overdue: row.overdue,
    createdAt: row.createdAt, updatedAt: row.updatedAt,
  };
}

/** The application API (list, confirm) and the case gauges. Rules: SPEC "Application API". */
export function createCasesApi(ctx: Ctx, deps: CasesDeps) {
  const { db, clock } = ctx;

  /** When a required case counts as overdue now (settings.overdueAfterDays; the rule itself is repo.isOverdue). */
  async function cutoffNow(): Promise<Date> {
    const settings = await repo.readSettings(db);
    return repo.overdueCutoff(clock.now(), settings.overdueAfterDays);
  }

  async function list(principal: Principal, filter: CaseFilter, page: PageQuery): Promise<Page<CaseView>> {
    let scope: string[] | null = null;
    if (principal.kind === 'application') {
      if (filter.applicationId && !principal.applicationIds.includes(filter.applicationId)) {
        throw new AppError('forbidden', 'applicationId is not associated with this key');
      }
      if (principal.applicationIds.length === 0) return { data: [], nextCursor: null };
      scope = principal.applicationIds;
    }
    const result = await repo.listCases(db, { filter, scope, cutoff: await cutoffNow() }, page);
    return { data: result.data.map(toView), nextCursor: result.nextCursor };
  }

  function confirmationView(c: {
    id: string; caseId: string; customerId: string; applicationId: string; reason: CaseReason | null;
    requiredSince: Date | null; confirmedAt: Date; keyId: string; outcome: ConfirmationOutcome;
  }): ConfirmationView {
    return {
      id: c.id, caseId: c.caseId, subscriptionId: c.customerId, applicationId: c.applicationId, reason: c.reason,
      requiredSince: c.requiredSince, confirmedAt: c.confirmedAt, keyId: c.keyId, outcome: c.outcome,
    };
  }

  /** An application confirms it deleted its copy of a customer's data. Rules: SPEC "Application API". */
  async function confirm(
    principal: Principal, body: { subscriptionId: string; applicationId?: string; outcome?: ConfirmationOutcome },
  ): Promise<ConfirmationView> {
    const outcome: ConfirmationOutcome = body.outcome ?? 'deleted';
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
    let journalAfterCommit: (() => Promise<void>) | null = null;
    const view = await db.transaction().execute(async (trx) => {
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
      const conf = await repo.insertConfirmation(trx, row, principal.keyId, at, outcome);
      const updated = await repo.updateCase(trx, row.id, { status: 'confirmed', confirmedAt: at, confirmedByKeyId: principal.keyId, outcome }, at);
      await auditCase(trx, 'deletion_case.confirmed', updated, at, principal.keyId, { confirmationId: conf.id, outcome });
      // Journaled in this transaction, so a confirmation is never committed without its journal row.
      journalAfterCommit = await deps.journal().recordConfirmation(trx, {
        confirmationId: conf.id, caseId: row.id, applicationId: row.applicationId, customerId: row.customerId,
        actorKeyId: principal.keyId, at, outcome,
      });
      return confirmationView(conf);
    });
    try {
      await (journalAfterCommit as (() => Promise<void>) | null)?.();
    } catch (err) {
      // The row is committed; the retention job copies it to the journal file (reconcileFile).
      ctx.log.warn({ err: (err as Error).message }, 'confirmation not appended to the journal file yet');
    }
    return view;
  }

  /**
   * The append-only confirmation history, oldest first: an application key sees only its own
   * applications' confirmations, an operator key all. Confirmations of cases reopened since stay.
   */
  async function listConfirmations(
    principal: Principal, filter: { applicationId?: string; subscriptionId?: string }, page: PageQuery,
  ): Promise<Page<ConfirmationView>> {
    const f: repo.ConfirmationFilter = { ...filter };
    if (principal.kind === 'application') {
      if (filter.applicationId && !principal.applicationIds.includes(filter.applicationId)) {
        throw new AppError('forbidden', 'applicationId is not associated with this key');
      }
      if (principal.applicationIds.length === 0) return { data: [], nextCursor: null };
      f.applicationIds = principal.applicationIds;
    }
    const limit = Math.min(page.limit ?? DEFAULT_LIMIT, MAX_LIMIT);
    const c = page.cursor ? decodeCursor(page.cursor) : null;
    const rows = await repo.listConfirmations(db, f, limit + 1, c ? { t: new Date(c.t), id: c.id } : null);
    const data = rows.slice(0, limit);
    const last = data[data.length - 1];
    return {
      data: data.map(confirmationView),
      nextCursor: rows.length > limit && last ? encodeCursor(last.confirmedAt, last.id) : null,
    };
  }

  async function refreshGauges() {
    const { byStatus, overdue } = await repo.caseCounts(db, await cutoffNow());
    for (const s of ['grace', 'required', 'confirmed', 'revoked']) ctx.metrics.casesByState.set({ state: s }, byStatus[s] ?? 0);
    ctx.metrics.overdueCases.set(overdue);
  }

  return { list, confirm, listConfirmations, refreshGauges };
}
