import type { Ctx } from '../context.ts';
import type { Db } from '../db/database.ts';
import type { Customer } from '../db/schema.ts';
import type { DeletionContext, DeletionStep, LicenseObserver } from '../plugin/registry.ts';
import crypto from 'node:crypto';
import { type OutboxRow, outboxRow } from '../webhooks/outbox.repo.ts';
import { auditCase, notice, notifyNow, zoneOf } from './case-events.ts';
import * as repo from './cases.repo.ts';
import type { CaseReason, CaseStatus } from './notifications.tables.ts';
import { localDay } from './schedule.ts';

const DAY_MS = 86_400_000;

/**
 * A case's lifecycle, driven by other domains inside their transactions: a license cancelled or
 * granted (the license observer) and a customer deleted (the deletion step).
 */
export function createCaseLifecycle(ctx: Ctx) {
  /** Inside the license's transaction: the pair's last active license is gone. */
  async function licenseCancelled(trx: Db, customerId: string, applicationId: string, at: Date) {
    await repo.lockPair(trx, customerId, applicationId);
    if (await repo.countActiveLicenses(trx, customerId, applicationId) > 0) return;
    const existing = await repo.findCase(trx, customerId, applicationId, true);
    // An open case keeps running: a required case stays required, a grace period is not extended.
    if (existing && (existing.status === 'grace' || existing.status === 'required')) return;
    const { settings, zone } = await zoneOf(ctx, trx);
    const graceEndsAt = new Date(at.getTime() + settings.gracePeriodDays * DAY_MS);
    const immediate = settings.gracePeriodDays === 0;
    const fields = {
      status: (immediate ? 'required' : 'grace') as CaseStatus,
      reason: (immediate ? 'grace_expired' : null) as CaseReason | null,
      graceStartedAt: at, graceEndsAt, requiredSince: immediate ? at : null,
      revokedAt: null, confirmedAt: null, confirmedByKeyId: null, lastNotifiedDay: null, lastNotifiedAt: null, outcome: null,
    };
    // A revoked or confirmed case is reopened for a fresh grace period; its confirmations stay in deletion_confirmations.
    let row = existing
      ? await repo.updateCase(trx, existing.id, fields, at)
      : await repo.insertCase(trx, customerId, applicationId, fields, at);
    await auditCase(trx, 'deletion_case.grace_started', row, at, null, { graceEndsAt: graceEndsAt.toISOString(), reopened: existing !== undefined });
    if (immediate) {
      await auditCase(trx, 'deletion_case.required', row, at, null);
      row = await notifyNow(trx, row, at, localDay(at, zone));
    }
  }

  /**
   * Inside the license's transaction: a new active license for the pair. The customer came back,
   * so a case still in its grace period, or required because that grace period ended and not yet
   * confirmed, is revoked: no further notices. A case made required by the customer's deletion
   * stays required (a deleted customer gets no new license anyway).
   */
  async function licenseActivated(trx: Db, customerId: string, applicationId: string, at: Date) {
    await repo.lockPair(trx, customerId, applicationId);
    const existing = await repo.findCase(trx, customerId, applicationId, true);
    if (!existing) return;
    const inGrace = existing.status === 'grace';
    const graceExpired = existing.status === 'required' && existing.reason === 'grace_expired';
    if (!inGrace && !graceExpired) return;
    const row = await repo.updateCase(trx, existing.id, { status: 'revoked', revokedAt: at }, at);
    await auditCase(trx, 'deletion_case.revoked', row, at, null, { from: existing.status });
  }

  const observer: LicenseObserver = { licenseActivated, licenseCancelled };

  /** What a customer deletion does to each application's case (read only): one statement for them all. */
  async function plan(trx: Db, customerId: string, applicationIds: string[], lock = false) {
    const found = await repo.findCases(trx, customerId, applicationIds, lock);
    return applicationIds.map((applicationId) => {
      const f = found.get(applicationId);
      const current = f?.row;
      let becomesRequired = false;
      if (!current || current.status === 'grace' || current.status === 'revoked') becomesRequired = true;
      // Confirmed already: only a license granted after the confirmation gives the application data to delete again.
      else if (current.status === 'confirmed') becomesRequired = current.confirmedAt !== null && f!.licensedSinceConfirmed;
      return { applicationId, current, becomesRequired, notify: becomesRequired || current?.status === 'required' };
    });
  }

  const deletionStep: DeletionStep = {
    name: 'deletionCases',
    phase: 'after',
    order: 20,
    /**
     * Set-based: the pairs locked in one statement, the cases read (locked) in one, and every
     * case made required or notified plus its outbox row written in one (rows computed here, the
     * same values the one-case-at-a-time lifecycle writes, one row version per case).
     */
    async run(trx: Db, c: DeletionContext) {
      const customerId = c.customer.id;
      const applicationIds = [...c.applicationIds].sort();
      const { zone } = await zoneOf(ctx, trx);
      const day = localDay(c.at, zone);
      let required = 0;
      let notified = 0;
      if (applicationIds.length === 0) return { applicationIds, required, notified };
      await repo.lockPairs(trx, customerId, applicationIds);
      const inserts: repo.CaseRow[] = [];
      const updates: repo.CaseRow[] = [];
      const outbox: OutboxRow[] = [];
      for (const p of await plan(trx, customerId, applicationIds, true)) {
        let row = p.current;
        let changed = false;
        if (p.becomesRequired) {
          const fields = {
            status: 'required' as const, reason: 'customer_deleted' as const, requiredSince: c.at,
            confirmedAt: null, confirmedByKeyId: null, revokedAt: null, outcome: null, updatedAt: c.at,
          };
          row = row ? { ...row, ...fields } : {
            id: crypto.randomUUID(), customerId, applicationId: p.applicationId, graceStartedAt: null, graceEndsAt: null,
            lastNotifiedDay: null, lastNotifiedAt: null, createdAt: c.at, ...fields,
          };
          changed = true;
          await auditCase(trx, 'deletion_case.required', row, c.at, c.actorKeyId);
          required++;
        }
        // A case this deletion made due is notified at once, even if it was notified earlier today
        // (SPEC "Webhooks"); a case that was already required gets at most its one notice a day.
        if (row && row.status === 'required' && (p.becomesRequired || row.lastNotifiedDay !== day)) {
          outbox.push(outboxRow(notice(row, c.at)));
          row = { ...row, lastNotifiedDay: day, lastNotifiedAt: c.at, updatedAt: c.at };
          changed = true;
          notified++;
        }
        if (changed) (p.current ? updates : inserts).push(row!);
      }
      await repo.writeCases(trx, inserts, updates, outbox);
      return { applicationIds, required, notified };
    },
    async preview(pdb: Db, customer: Customer) {
      const planned = await plan(pdb, customer.id, await repo.licensedApplications(pdb, customer.id));
      return {
        applicationIds: planned.filter((p) => p.notify).map((p) => p.applicationId),
        cases: planned.map((p) => ({
          applicationId: p.applicationId, status: p.current?.status ?? null,
          becomes: p.becomesRequired || p.current?.status === 'required' ? 'required' : p.current!.status,
        })),
      };
    },
  };

  return { observer, deletionStep };
}
