import type { Db } from '../db/database.ts';

/** An application's outbox row (one webhook), locked for the caller's transaction. */
export const findWebhookForUpdate = (trx: Db, applicationId: string, webhookId: string) =>
  trx.selectFrom('webhookOutbox').selectAll().where('id', '=', webhookId)
    .where('applicationId', '=', applicationId).forUpdate().executeTakeFirst();

/** Puts a webhook back in the queue, due at `at` (same webhook-id: not a new notice). */
export async function requeueWebhook(trx: Db, webhookId: string, at: Date): Promise<void> {
  await trx.updateTable('webhookOutbox').set({ status: 'pending', nextAttemptAt: at }).where('id', '=', webhookId).execute();
}
