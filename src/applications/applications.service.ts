import crypto from 'node:crypto';
import { appendAudit } from '../audit/audit.repo.ts';
import { sealWebhookSecret } from './webhook-secrets.ts';
import { insertKey, type KeyKind, type Principal } from '../auth/api-keys.ts';
import type { Ctx } from '../context.ts';
import type { Application } from '../db/schema.ts';
import { AppError, notFound } from '../http/errors.ts';
import type { PageQuery } from '../http/pagination.ts';
import * as repo from './applications.repo.ts';
import { listDeliveries, resumeEndpoint } from '../webhooks/deliveries.repo.ts';

/** After a rotation the previous secret still signs (a second signature) for this long. */
export const SECRET_OVERLAP_MS = 24 * 3_600_000;

export interface ApplicationPatch { name?: string; webhookUrl?: string | null; enabled?: boolean }

/** Checks a webhook URL before it is stored; the notifications domain supplies the SSRF guard. */
export type WebhookUrlCheck = (url: string) => Promise<void>;

export const newWebhookSecret = () => `whsec_${crypto.randomBytes(32).toString('base64')}`;

export function toApplicationView(a: Application) {
  return {
    id: a.id,
    name: a.name,
    webhookUrl: a.webhookUrl,
    enabled: a.enabled,
    disabledReason: a.disabledReason,
    failingSince: a.failingSince,
    previousSecretExpiresAt: a.previousSecretExpiresAt,
    createdAt: a.createdAt,
    updatedAt: a.updatedAt,
  };
}

/**
 * Application self-service (SPEC "Application API"): an application key reaches only the
 * applications it is associated with, 403 for any other id whether it exists or not (so the
 * answer tells nothing about other applications). Operators reach every application.
 */
export function assertOwnApplication(principal: Principal | undefined, id: string): void {
  if (principal?.kind === 'application' && !principal.applicationIds.includes(id)) {
    throw new AppError('forbidden', 'This key is not associated with this application');
  }
}

export function createApplicationsService(ctx: Ctx, checkWebhookUrl: WebhookUrlCheck) {
  const { db, clock } = ctx;
  return {
    async create(principal: Principal, input: { name: string; webhookUrl?: string | null }) {
      if (input.webhookUrl) await checkWebhookUrl(input.webhookUrl);
      return db.transaction().execute(async (trx) => {
        const at = clock.now();
        const id = crypto.randomUUID();
        const secret = newWebhookSecret();
        const a = await repo.insertApplication(trx, {
          id, name: input.name, webhookUrl: input.webhookUrl ?? null, webhookSecret: sealWebhookSecret(ctx.secrets.storedSecretsKey, id, secret), at,
        });
        await appendAudit(trx, { type: 'application.created', actorKeyId: principal.keyId, subjectType: 'application', subjectId: a.id, at });
        return { ...toApplicationView(a), webhookSecret: secret };
      });
    },

    async get(id: string, principal?: Principal) {
      assertOwnApplication(principal, id);
      const a = await repo.findApplication(db, id);
      if (!a) throw notFound('Application');
      return toApplicationView(a);
    },

    async list(page: PageQuery) {
      const r = await repo.listApplications(db, page);
      return { data: r.data.map(toApplicationView), nextCursor: r.nextCursor };
    },

    /**
     * Renames, changes or removes the webhook URL (checked by the SSRF guard), disables or
     * re-enables. Re-enabling clears the failure streak and sends what waited, at once.
     */
    async update(principal: Principal, id: string, patch: ApplicationPatch) {
      assertOwnApplication(principal, id);
      if (principal.kind === 'application' && (patch.name !== undefined || patch.enabled !== undefined)) {
        throw new AppError('forbidden', 'An application key may change only webhookUrl');
      }
      if (patch.webhookUrl) await checkWebhookUrl(patch.webhookUrl);
      return db.transaction().execute(async (trx) => {
        const a = await repo.findForUpdate(trx, id);
        if (!a) throw notFound('Application');
        const at = clock.now();
        const values: Partial<Omit<Application, 'id' | 'createdAt'>> = { updatedAt: at };
        const changed: string[] = [];
        if (patch.name !== undefined && patch.name !== a.name) { values.name = patch.name; changed.push('name'); }
        const urlChanged = patch.webhookUrl !== undefined && patch.webhookUrl !== a.webhookUrl;
        if (urlChanged) { values.webhookUrl = patch.webhookUrl ?? null; values.failingSince = null; changed.push('webhookUrl'); }
        const enabling = patch.enabled === true && !a.enabled;
        const disabling = patch.enabled === false && a.enabled;
        if (enabling) { values.enabled = true; values.disabledReason = null; values.failingSince = null; }
        if (disabling) { values.enabled = false; values.disabledReason = 'operator'; }
        const updated = await repo.updateApplication(trx, id, values);
        if (changed.length > 0) {
          await appendAudit(trx, { type: 'application.updated', actorKeyId: principal.keyId, subjectType: 'application', subjectId: id, at, data: { fields: changed } });
        }
        if (enabling) {
          await appendAudit(trx, { type: 'application.enabled', actorKeyId: principal.keyId, subjectType: 'application', subjectId: id, at,
            data: { previousReason: a.disabledReason } });
        }
        if (disabling) {
          await appendAudit(trx, { type: 'application.disabled', actorKeyId: principal.keyId, subjectType: 'application', subjectId: id, at,
            data: { reason: 'operator' } });
        }
        if (enabling || (urlChanged && updated.webhookUrl)) await resumeEndpoint(trx, id, at);
        return toApplicationView(updated);
      });
    },

    /** A new whsec_ secret, shown once; the old one keeps signing (second signature) for 24 h. */
    async rotateSecret(principal: Principal, id: string) {
      assertOwnApplication(principal, id);
      return db.transaction().execute(async (trx) => {
        const a = await repo.findForUpdate(trx, id);
        if (!a) throw notFound('Application');
        const at = clock.now();
        const expires = new Date(at.getTime() + SECRET_OVERLAP_MS);
        const secret = newWebhookSecret();
        const updated = await repo.updateApplication(trx, id, {
          webhookSecret: sealWebhookSecret(ctx.secrets.storedSecretsKey, id, secret), previousWebhookSecret: a.webhookSecret,
          previousSecretExpiresAt: expires, updatedAt: at,
        });
        await appendAudit(trx, { type: 'application.secret_rotated', actorKeyId: principal.keyId, subjectType: 'application', subjectId: id, at,
          data: { previousSecretExpiresAt: expires.toISOString() } });
        return { ...toApplicationView(updated), webhookSecret: secret };
      });
    },

    async deliveries(id: string, query: { limit?: number; cursor?: string; webhookId?: string; outcome?: string }, principal?: Principal) {
      assertOwnApplication(principal, id);
      if (!await repo.findApplication(db, id)) throw notFound('Application');
      return listDeliveries(db, id, query);
    },

    async createKey(principal: Principal, input: { kind: KeyKind; applicationIds?: string[] }) {
      const applicationIds = [...new Set(input.applicationIds ?? [])];
      if (input.kind === 'operator' && applicationIds.length > 0) {
        throw new AppError('validation_failed', 'body.applicationIds is only for application keys');
      }
      if (input.kind === 'application' && applicationIds.length === 0) {
        throw new AppError('validation_failed', 'body.applicationIds must name at least one application for an application key');
      }
      return db.transaction().execute(async (trx) => {
        const known = await repo.existingApplicationIds(trx, applicationIds);
        const unknown = applicationIds.filter((id) => !known.has(id));
        if (unknown.length > 0) throw new AppError('validation_failed', `body.applicationIds: unknown application ${unknown.join(', ')}`);
        const at = clock.now();
        const created = await insertKey(trx, { kind: input.kind, applicationIds, createdByKeyId: principal.keyId, at, hashSecret: ctx.secrets.apiKeyHashKey });
        await appendAudit(trx, {
          type: 'api_key.created', actorKeyId: principal.keyId, subjectType: 'api_key', subjectId: created.id, at,
          data: { kind: input.kind, applicationIds },
        });
        return { id: created.id, kind: input.kind, applicationIds, key: created.key, createdAt: at };
      });
    },
  };
}

export type ApplicationsService = ReturnType<typeof createApplicationsService>;
