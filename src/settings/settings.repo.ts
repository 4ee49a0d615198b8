import type { Db } from '../db/database.ts';
import { fromJson } from '../db/json-values.ts';
import { ident } from '../db/sql-text.ts';
import type { Settings } from '../db/schema.ts';
import { toSnake } from '../erasure/data-map.ts';

/**
 * The one settings repository: the single settings row (id = 1, created by the spine migration).
 * Each domain owns a section of its columns (declared with `r.settingsSection`) and reads just
 * that section with readSettingsSection; `GET/PATCH /v1/settings` (erasure/settings.service.ts)
 * read and write the whole row.
 */
export async function getSettings(db: Db, lock = false): Promise<Settings> {
  let q = db.selectFrom('settings').selectAll().where('id', '=', 1);
  if (lock) q = q.forUpdate();
  return remember(db, await q.executeTakeFirstOrThrow());
}

/**
 * The settings row as read (or written) in a transaction: a DELETE reads several domains'
 * sections, one read is enough. Kept per transaction only (settings change, and every instance
 * must see the change at its next transaction); a write in the transaction replaces it.
 */
const inTransaction = new WeakMap<Db, Settings>();
function remember(db: Db, row: Settings): Settings {
  if (db.isTransaction) inTransaction.set(db, row);
  return row;
}

export interface SettingsUpdate {
  automaticPersonalDataDeletion?: boolean;
  gracePeriodDays?: number;
  notificationTime?: string;
  notificationTimeZone?: string;
  backupRetentionDays?: number;
  keyEpochDays?: number;
  overdueAfterDays?: number;
  deleteCustomerWhenGraceEnds?: boolean;
  databaseBackupEnabled?: boolean;
  databaseBackupTime?: string;
  webhookLogRetentionDays?: number;
  jobRunRetentionDays?: number;
  idempotencyRetentionHours?: number;
  redactionOverrides?: Record<string, string>;
  policyVersion?: number;
}

export async function updateSettings(db: Db, update: SettingsUpdate, at: Date): Promise<Settings> {
  const { redactionOverrides, ...rest } = update;
  return remember(db, await db.updateTable('settings')
    .set({ ...rest, ...(redactionOverrides ? { redactionOverrides: JSON.stringify(redactionOverrides) } : {}), updatedAt: at })
    .where('id', '=', 1).returningAll().executeTakeFirstOrThrow());
}

/** The settings columns of each domain's section. */
export const SETTINGS_SECTIONS = {
  erasure: ['automaticPersonalDataDeletion', 'redactionOverrides', 'policyVersion'],
  notifications: ['gracePeriodDays', 'notificationTime', 'notificationTimeZone', 'overdueAfterDays', 'deleteCustomerWhenGraceEnds'],
  backups: ['backupRetentionDays'],
  deployment: ['databaseBackupEnabled', 'databaseBackupTime', 'webhookLogRetentionDays', 'jobRunRetentionDays', 'idempotencyRetentionHours'],
  crypto: ['keyEpochDays'],
} as const satisfies Record<string, ReadonlyArray<keyof Settings>>;

export type SettingsSectionName = keyof typeof SETTINGS_SECTIONS;
export type SettingsSectionOf<N extends SettingsSectionName> = Pick<Settings, (typeof SETTINGS_SECTIONS)[N][number]>;

/**
 * One domain's section of the settings row (inside the caller's transaction when `db` is one; there
 * the whole row is read once and kept for the transaction's later reads).
 */
export async function readSettingsSection<N extends SettingsSectionName>(db: Db, name: N): Promise<SettingsSectionOf<N>> {
  const columns = SETTINGS_SECTIONS[name] as ReadonlyArray<keyof Settings>;
  if (db.isTransaction) {
    const row = inTransaction.get(db) ?? await getSettings(db);
    return Object.fromEntries(columns.map((c) => [c, row[c]])) as SettingsSectionOf<N>;
  }
  return db.selectFrom('settings').select(columns).where('id', '=', 1).executeTakeFirstOrThrow() as Promise<SettingsSectionOf<N>>;
}

const SECTION_COLUMNS = [...new Set(Object.values(SETTINGS_SECTIONS).flat())] as Array<keyof Settings>;

/**
 * Every section's columns as one json object (a subselect), for a statement that reads them beside
 * other things (a DELETE's first read after its lock); adoptSettings keeps it for the transaction.
 * The columns are booleans, integers, text and jsonb: json reads them as the driver does.
 */
// Text (a DELETE's blocker statement is SQL text, src/db/sql-text.ts); it has no parameters, so it is built once.
const SETTINGS_JSON_SQL = `(SELECT json_build_object(${SECTION_COLUMNS.map((c) => `'${c}'::text, ${ident(toSnake(c))}`)
  .join(', ')}) FROM settings WHERE id = 1)`;
export const settingsJson = (): string => SETTINGS_JSON_SQL;

/** The sections read by settingsJson, kept for `trx`'s later readSettingsSection (see inTransaction). */
export function adoptSettings(trx: Db, json: unknown): void {
  if (!trx.isTransaction || inTransaction.has(trx) || json === null || json === undefined) return;
  // Only the sections' columns: readSettingsSection reads nothing else from it (getSettings always reads the row).
  inTransaction.set(trx, fromJson<Settings>(json));
}
