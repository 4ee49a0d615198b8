import { Type } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { Timestamp, errors } from '../http/schemas.ts';
import type { SettingsService } from './settings.service.ts';
import type { TypedApp } from '../plugin/registry.ts';

const tags = ['settings'];
const Days = Type.Integer({ minimum: 0, maximum: 36500 });
const Time = Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: '"HH:MM", 24-hour clock' });
const Zone = Type.String({ minLength: 1, maxLength: 100, description: 'IANA time zone, e.g. "Europe/Berlin"' });
const PolicyMap = Type.Record(Type.String({ maxLength: 100 }), Type.String(), {
  description: '"entity.field" → nullify | mask | delete | keep',
});

export const SettingsSchema = Type.Object({
  automaticPersonalDataDeletion: Type.Boolean(),
  gracePeriodDays: Type.Integer(),
  notificationTime: Type.String(),
  notificationTimeZone: Type.String(),
  backupRetentionDays: Type.Integer(),
  overdueAfterDays: Type.Integer(),
  deleteCustomerWhenGraceEnds: Type.Boolean({ description: 'When true, the grace-period job deletes customers who no longer hold any license once every case left its grace period' }),
  databaseBackupEnabled: Type.Boolean(),
  databaseBackupTime: Type.String(),
  webhookLogRetentionDays: Type.Integer(),
  jobRunRetentionDays: Type.Integer(),
  idempotencyRetentionHours: Type.Integer(),
  keyEpochDays: Type.Integer({ description: 'A new key epoch starts every keyEpochDays (crypto-shredding; docs/encryption.md)' }),
  redactionPolicy: PolicyMap,
  redactionPolicyOverrides: PolicyMap,
  policyVersion: Type.Integer(),
  updatedAt: Timestamp,
}, { additionalProperties: false });

export const SettingsPatchSchema = Type.Object({
  automaticPersonalDataDeletion: Type.Optional(Type.Boolean()),
  gracePeriodDays: Type.Optional(Days),
  notificationTime: Type.Optional(Time),
  notificationTimeZone: Type.Optional(Zone),
  backupRetentionDays: Type.Optional(Days),
  overdueAfterDays: Type.Optional(Days),
  deleteCustomerWhenGraceEnds: Type.Optional(Type.Boolean()),
  databaseBackupEnabled: Type.Optional(Type.Boolean({ description: 'Take a database backup every day at databaseBackupTime (notificationTimeZone)' })),
  databaseBackupTime: Type.Optional(Time),
  webhookLogRetentionDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 36500, description: 'Delivered/failed webhooks and delivery attempts are deleted after this many days' })),
  jobRunRetentionDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 36500, description: 'Records of scheduled runs are deleted after this many days' })),
  idempotencyRetentionHours: Type.Optional(Type.Integer({ minimum: 1, maximum: 720, description: 'A stored Idempotency-Key response is replayed for this many hours, then forgotten (the request runs again) and deleted by the retention job' })),
  keyEpochDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 365 })),
  redactionPolicy: Type.Optional(Type.Record(Type.String({ maxLength: 100 }), Type.Union([Type.String({ maxLength: 20 }), Type.Null()]), {
    maxProperties: 200,
    description: 'Overrides per field, e.g. {"customer.organization": "mask"}; null restores the default',
  })),
  confirmKeepIdentifying: Type.Optional(Type.Boolean({
    description: 'Required (true) when the patch sets "keep" on a field that identifies the person',
  })),
}, { additionalProperties: false, minProperties: 1 });

export function registerSettingsRoutes(app: TypedApp, settings: SettingsService) {
  app.get('/v1/settings', {
    config: { access: 'operator' },
    schema: { operationId: 'getSettings', tags, summary: 'Operator settings, with the effective redaction policy', response: { 200: SettingsSchema, ...errors() } },
  }, async () => settings.get());

  app.patch('/v1/settings', {
    config: { access: 'operator' },
    schema: { operationId: 'updateSettings',
      tags, summary: 'Change settings; redaction-policy changes bump policyVersion and are audited',
      body: SettingsPatchSchema, response: { 200: SettingsSchema, ...errors() },
    },
  }, async (request) => settings.update(principalOf(request).keyId, request.body));
}
