import type { Db } from '../db/database.ts';
import type { Application } from '../db/schema.ts';
import { paginate, type PageQuery } from '../http/pagination.ts';

export async function insertApplication(db: Db, input: { id: string; name: string; webhookUrl: string | null; webhookSecret: string; at: Date }) {
  return db.insertInto('applications').values({
    id: input.id, name: input.name, webhookUrl: input.webhookUrl, webhookSecret: input.webhookSecret,
    previousWebhookSecret: null, previousSecretExpiresAt: null, disabledReason: null, failingSince: null,
    createdAt: input.at, updatedAt: input.at,
  }).returningAll().executeTakeFirstOrThrow();
}

export const findApplication = (db: Db, id: string): Promise<Application | undefined> =>
  db.selectFrom('applications').selectAll().where('id', '=', id).executeTakeFirst();

export const listApplications = (db: Db, page: PageQuery) =>
  paginate(db.selectFrom('applications').selectAll(), 'applications', page);

export async function existingApplicationIds(db: Db, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db.selectFrom('applications').select('id').where('id', 'in', ids).execute();
  return new Set(rows.map((r) => r.id));
}

export async function updateApplication(db: Db, id: string, values: Partial<Omit<Application, 'id' | 'createdAt'>>) {
  return db.updateTable('applications').set(values).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
}

export const findForUpdate = (trx: Db, id: string) =>
  trx.selectFrom('applications').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();

/** Applications whose webhook secrets may still be stored in clear (not `env:` references); see webhook-secrets.ts. */
export function applicationsWithClearSecrets(db: Db) {
  return db.selectFrom('applications').select(['id', 'webhookSecret', 'previousWebhookSecret'])
    .where((eb) => eb.or([eb('webhookSecret', 'not like', 'env:%'), eb('previousWebhookSecret', 'not like', 'env:%')])).execute();
}

/** Sets both webhook secrets, unless the current one changed since it was read. */
export async function setWebhookSecretsIfUnchanged(db: Db, id: string, readSecret: string,
  set: { webhookSecret: string; previousWebhookSecret: string | null }): Promise<void> {
  await db.updateTable('applications').set(set).where('id', '=', id).where('webhookSecret', '=', readSecret).execute();
}
