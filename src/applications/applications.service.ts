import crypto from 'node:crypto';
import { appendAudit } from '../audit/audit.repo.ts';
import { insertKey, type KeyKind, type Principal } from '../auth/api-keys.ts';
import type { Ctx } from '../context.ts';
import type { Application } from '../db/schema.ts';
import { AppError, notFound } from '../http/errors.ts';
import type { PageQuery } from '../http/pagination.ts';
import * as repo from './applications.repo.ts';

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
    createdAt: a.createdAt,
    updatedAt: a.updatedAt,
  };
}

export function createApplicationsService(ctx: Ctx, checkWebhookUrl: WebhookUrlCheck) {
  const { db, clock } = ctx;
  return {
    async create(principal: Principal, input: { name: string; webhookUrl?: string | null }) {
      if (input.webhookUrl) await checkWebhookUrl(input.webhookUrl);
      return db.transaction().execute(async (trx) => {
        const at = clock.now();
        const a = await repo.insertApplication(trx, {
          name: input.name, webhookUrl: input.webhookUrl ?? null, webhookSecret: newWebhookSecret(), at,
        });
        await appendAudit(trx, { type: 'application.created', actorKeyId: principal.keyId, subjectType: 'application', subjectId: a.id, at });
        return { ...toApplicationView(a), webhookSecret: a.webhookSecret };
      });
    },

    async get(id: string) {
      const a = await repo.findApplication(db, id);
      if (!a) throw notFound('Application');
      return toApplicationView(a);
    },

    async list(page: PageQuery) {
      const r = await repo.listApplications(db, page);
      return { data: r.data.map(toApplicationView), nextCursor: r.nextCursor };
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
        const created = await insertKey(trx, { kind: input.kind, applicationIds, createdByKeyId: principal.keyId, at });
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
