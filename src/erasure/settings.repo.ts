import type { Db } from '../db/database.ts';
import type { Settings } from '../db/schema.ts';

/** The one settings row (id = 1, created by the spine migration). */
export async function getSettings(db: Db, lock = false): Promise<Settings> {
  let q = db.selectFrom('settings').selectAll().where('id', '=', 1);
  if (lock) q = q.forUpdate();
  return q.executeTakeFirstOrThrow();
}

export interface SettingsUpdate {
  automaticPersonalDataDeletion?: boolean;
  gracePeriodDays?: number;
  notificationTime?: string;
  notificationTimeZone?: string;
  backupRetentionDays?: number;
  overdueAfterDays?: number;
  databaseBackupEnabled?: boolean;
  databaseBackupTime?: string;
  webhookLogRetentionDays?: number;
  jobRunRetentionDays?: number;
  redactionOverrides?: Record<string, string>;
  policyVersion?: number;
}

export async function updateSettings(db: Db, update: SettingsUpdate, at: Date): Promise<Settings> {
  const { redactionOverrides, ...rest } = update;
  return db.updateTable('settings')
    .set({ ...rest, ...(redactionOverrides ? { redactionOverrides: JSON.stringify(redactionOverrides) } : {}), updatedAt: at })
    .where('id', '=', 1).returningAll().executeTakeFirstOrThrow();
}
