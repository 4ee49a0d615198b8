import type { Db } from '../db/database.ts';
import { isSealed, open, seal } from '../crypto/envelope.ts';

/** Webhook secrets are stored sealed (src/crypto/envelope.ts), bound to their application. */
const aad = (applicationId: string) => `applications.webhook_secret:${applicationId}`;

export const sealWebhookSecret = (key: Buffer, applicationId: string, secret: string) => seal(key, secret, aad(applicationId));

/** The clear secret; a value stored in clear by release 1 (not yet sealed at start) is returned as is. */
export const openWebhookSecret = (key: Buffer, applicationId: string, stored: string) =>
  isSealed(stored) ? open(key, stored, aad(applicationId)) : stored;

/** Seals every webhook secret still stored in clear (release 1); run at start, idempotent. */
export async function sealClearWebhookSecrets(db: Db, key: Buffer): Promise<number> {
  const rows = await db.selectFrom('applications').select(['id', 'webhookSecret', 'previousWebhookSecret'])
    .where((eb) => eb.or([eb('webhookSecret', 'not like', 'env:%'), eb('previousWebhookSecret', 'not like', 'env:%')])).execute();
  for (const r of rows) {
    await db.updateTable('applications').set({
      webhookSecret: isSealed(r.webhookSecret) ? r.webhookSecret : sealWebhookSecret(key, r.id, r.webhookSecret),
      previousWebhookSecret: r.previousWebhookSecret === null || isSealed(r.previousWebhookSecret)
        ? r.previousWebhookSecret : sealWebhookSecret(key, r.id, r.previousWebhookSecret),
    }).where('id', '=', r.id).where('webhookSecret', '=', r.webhookSecret).execute();
  }
  return rows.length;
}
