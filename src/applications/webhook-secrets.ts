import type { Db } from '../db/database.ts';
import { isSealed, open, seal } from '../crypto/envelope.ts';
import { applicationsWithClearSecrets, setWebhookSecretsIfUnchanged } from './applications.repo.ts';

/** Webhook secrets are stored sealed (src/crypto/envelope.ts), bound to their application. */
const aad = (applicationId: string) => `applications.webhook_secret:${applicationId}`;

export const sealWebhookSecret = (key: Buffer, applicationId: string, secret: string) => seal(key, secret, aad(applicationId));

/** The clear secret; a value stored in clear by release 1 (not yet sealed at start) is returned as is. */
export const openWebhookSecret = (key: Buffer, applicationId: string, stored: string) =>
  isSealed(stored) ? open(key, stored, aad(applicationId)) : stored;

/** Seals every webhook secret still stored in clear (release 1); run at start, idempotent. */
export async function sealClearWebhookSecrets(db: Db, key: Buffer): Promise<number> {
  const rows = await applicationsWithClearSecrets(db);
  for (const r of rows) {
    await setWebhookSecretsIfUnchanged(db, r.id, r.webhookSecret, {
      webhookSecret: isSealed(r.webhookSecret) ? r.webhookSecret : sealWebhookSecret(key, r.id, r.webhookSecret),
      previousWebhookSecret: r.previousWebhookSecret === null || isSealed(r.previousWebhookSecret)
        ? r.previousWebhookSecret : sealWebhookSecret(key, r.id, r.previousWebhookSecret),
    });
  }
  return rows.length;
}
