import { appendAudit } from '../audit/audit.repo.ts';
import type { Ctx } from '../context.ts';
import type { Settings } from '../db/schema.ts';
import type { SettingsSection } from '../plugin/registry.ts';
import { validation } from '../http/errors.ts';
import type { Action } from './data-map.ts';
import { POLICY_FIELD_BY_KEY, effectivePolicy } from './redaction-policy.ts';
import { type SettingsUpdate, getSettings, updateSettings } from '../settings/settings.repo.ts';

export interface SettingsPatch {
  automaticPersonalDataDeletion?: boolean;
  gracePeriodDays?: number;
  notificationTime?: string;
  notificationTimeZone?: string;
  backupRetentionDays?: number;
  overdueAfterDays?: number;
  deleteCustomerWhenGraceEnds?: boolean;
  databaseBackupEnabled?: boolean;
  databaseBackupTime?: string;
  webhookLogRetentionDays?: number;
  jobRunRetentionDays?: number;
  idempotencyRetentionHours?: number;
  /** Crypto-shredding: a new key epoch starts every keyEpochDays. */
  keyEpochDays?: number;
  /** Per-field overrides: "entity.field" → action; null (or the default action) removes the override. */
  redactionPolicy?: Record<string, string | null>;
  /** Must be true when the patch sets `keep` on a field the data map marks as identifying. */
  confirmKeepIdentifying?: boolean;
}

const SCALARS = ['automaticPersonalDataDeletion', 'gracePeriodDays', 'notificationTime', 'notificationTimeZone',
  'backupRetentionDays', 'overdueAfterDays', 'databaseBackupEnabled', 'databaseBackupTime', 'webhookLogRetentionDays',
  'jobRunRetentionDays', 'idempotencyRetentionHours', 'keyEpochDays', 'deleteCustomerWhenGraceEnds'] as const;

export function toSettingsView(s: Settings) {
  return {
    automaticPersonalDataDeletion: s.automaticPersonalDataDeletion,
    gracePeriodDays: s.gracePeriodDays,
    notificationTime: s.notificationTime,
    notificationTimeZone: s.notificationTimeZone,
    backupRetentionDays: s.backupRetentionDays,
    overdueAfterDays: s.overdueAfterDays,
    deleteCustomerWhenGraceEnds: s.deleteCustomerWhenGraceEnds,
    databaseBackupEnabled: s.databaseBackupEnabled,
    databaseBackupTime: s.databaseBackupTime,
    webhookLogRetentionDays: s.webhookLogRetentionDays,
    jobRunRetentionDays: s.jobRunRetentionDays,
    idempotencyRetentionHours: s.idempotencyRetentionHours,
    keyEpochDays: s.keyEpochDays,
    redactionPolicy: effectivePolicy(s.redactionOverrides),
    redactionPolicyOverrides: s.redactionOverrides,
    policyVersion: s.policyVersion,
    updatedAt: s.updatedAt,
  };
}
export type SettingsView = ReturnType<typeof toSettingsView>;


/** Validates the policy part of a patch against the current overrides; returns the new overrides and what changed. */
function applyPolicyPatch(current: Record<string, string>, patch: Record<string, string | null>, confirmKeep: boolean) {
  const next: Record<string, string> = { ...current };
  const unconfirmed: string[] = [];
  for (const [key, value] of Object.entries(patch)) {
    const f = POLICY_FIELD_BY_KEY.get(key);
    if (!f) {
      throw validation(`body.redactionPolicy: unknown field "${key}" (fields are "entity.field" as listed by GET /v1/settings)`);
    }
    if (value === null || value === f.defaultAction) {
      delete next[key];
      continue;
    }
    if (!f.allowed.includes(value as Action)) {
      throw validation(`body.redactionPolicy.${key}: action "${value}" is not valid for this field (allowed: ${f.allowed.join(', ')})`);
    }
    if (value === 'keep' && f.column.identifying && current[key] !== 'keep' && !confirmKeep) unconfirmed.push(key);
    next[key] = value;
  }
  if (unconfirmed.length > 0) {
    throw validation(`body.redactionPolicy: keeping ${unconfirmed.join(', ')} keeps a field that identifies the person; `
      + 'send "confirmKeepIdentifying": true with the patch to confirm');
  }
  const before = effectivePolicy(current);
  const after = effectivePolicy(next);
  const changes: Record<string, Action> = {};
  for (const key of Object.keys(after)) if (before[key] !== after[key]) changes[key] = after[key]!;
  return { next, changes };
}

export function createSettingsService(ctx: Ctx, sections: () => readonly SettingsSection[]) {
  const { db, clock } = ctx;
  return {
    async get(): Promise<SettingsView> {
      return toSettingsView(await getSettings(db));
    },

    async update(actorKeyId: string | null, patch: SettingsPatch): Promise<SettingsView> {
      const update: SettingsUpdate = {};
      // Each domain checks and canonicalizes its own section (e.g. notifications: the time zone).
      for (const section of sections()) {
        if (!section.normalize) continue;
        const part = Object.fromEntries(Object.entries(patch).filter(([k, v]) => section.fields.includes(k) && v !== undefined));
        if (Object.keys(part).length > 0) patch = { ...patch, ...section.normalize(part) };
      }
      return db.transaction().execute(async (trx) => {
        const current = await getSettings(trx, true);
        const at = clock.now();
        const changed: Record<string, unknown> = {};
        for (const key of SCALARS) {
          const value = patch[key];
          if (value !== undefined && value !== current[key]) {
            (update as Record<string, unknown>)[key] = value;
            changed[key] = value;
          }
        }
        let policyChanges: Record<string, Action> = {};
        if (patch.redactionPolicy) {
          const r = applyPolicyPatch(current.redactionOverrides, patch.redactionPolicy, patch.confirmKeepIdentifying === true);
          policyChanges = r.changes;
          if (Object.keys(r.changes).length > 0) {
            update.redactionOverrides = r.next;
            update.policyVersion = current.policyVersion + 1;
          }
        }
        if (Object.keys(update).length === 0) return toSettingsView(current);
        const saved = await updateSettings(trx, update, at);
        if (Object.keys(changed).length > 0) {
          await appendAudit(trx, { type: 'settings.updated', actorKeyId, subjectType: 'settings', at, data: { changed } });
        }
        if (update.policyVersion !== undefined) {
          const keptIdentifying = Object.entries(policyChanges)
            .filter(([key, action]) => action === 'keep' && POLICY_FIELD_BY_KEY.get(key)!.column.identifying).map(([key]) => key);
          await appendAudit(trx, {
            type: 'redaction_policy.updated', actorKeyId, subjectType: 'settings', at,
            data: { policyVersion: update.policyVersion, changes: policyChanges, keptIdentifying },
          });
        }
        return toSettingsView(saved);
      });
    },
  };
}

export type SettingsService = ReturnType<typeof createSettingsService>;
