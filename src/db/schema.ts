import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';
import type { BackupTables } from '../backups/backups.tables.ts';
import type { DeploymentTables } from '../deployment/deployment.tables.ts';
import type { CryptoTables } from '../crypto/crypto.tables.ts';
import type { ErasureTables } from '../erasure/erasure.tables.ts';
import type { NotificationTables } from '../notifications/notifications.tables.ts';
import type { WebhookTables } from '../webhooks/webhooks.tables.ts';
import type { EvidenceTables } from '../evidence/evidence.tables.ts';

// Column names are camelCase here; the CamelCasePlugin maps them to the snake_case columns.
export type Timestamp = ColumnType<Date, Date | string, Date | string>;
export type Json<T> = ColumnType<T, string | T, string | T>;

export interface SettingsTable {
  id: number;
  automaticPersonalDataDeletion: boolean;
  gracePeriodDays: number;
  notificationTime: string;
  notificationTimeZone: string;
  backupRetentionDays: number;
  overdueAfterDays: number;
  keyEpochDays: Generated<number>;
  redactionOverrides: Json<Record<string, string>>;
  policyVersion: number;
  deleteCustomerWhenGraceEnds: Generated<boolean>;
  /** Issue 11: scheduled database backups and retention of operational tables (migration 0007). */
  databaseBackupEnabled: boolean;
  databaseBackupTime: string;
  webhookLogRetentionDays: number;
  jobRunRetentionDays: number;
  idempotencyRetentionHours: number;
  updatedAt: Timestamp;
}

export interface ApplicationsTable {
  id: Generated<string>;
  name: string;
  webhookUrl: string | null;
  webhookSecret: string;
  previousWebhookSecret: string | null;
  previousSecretExpiresAt: Timestamp | null;
  enabled: Generated<boolean>;
  disabledReason: string | null;
  failingSince: Timestamp | null;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

export interface ApiKeysTable {
  id: Generated<string>;
  kind: 'operator' | 'application';
  keyHash: string;
  keyPrefix: string;
  createdByKeyId: string | null;
  createdAt: Timestamp;
  revokedAt: Timestamp | null;
  label: string | null;
  expiresAt: Timestamp | null;
  lastUsedAt: Timestamp | null;
}

export interface ApiKeyApplicationsTable {
  apiKeyId: string;
  applicationId: string;
}

export interface CustomersTable {
  id: Generated<string>;
  externalId: string | null;
  salutation: string | null;
  firstName: string | null;
  lastName: string | null;
  displayName: string | null;
  email: string | null;
  organization: string | null;
  tin: string | null;
  lastLoginSuccessIp: string | null;
  lastLoginFailureIp: string | null;
  sdkRegisterIp: string | null;
  metadata: Json<Record<string, string>>;
  legalHold: Generated<boolean>;
  profilePhotoKey: string | null;
  profilePhotoContentType: string | null;
  /** Blind index of the normalized e-mail (crypto-shredding); NULL once the customer's key is destroyed. */
  emailBidx: Generated<string | null>;
  /** Blind index of the external id (unique among living customers). */
  externalIdBidx: Generated<string | null>;
  createdAt: Timestamp;
  updatedAt: Timestamp;
  deletedAt: Timestamp | null;
  redactedAt: Timestamp | null;
}

interface CollectionBase {
  id: Generated<string>;
  customerId: string;
  createdAt: Timestamp;
  updatedAt: Timestamp;
  deletedAt: Timestamp | null;
}

export interface AddressesTable extends CollectionBase {
  salutation: string | null; firstName: string | null; lastName: string | null; title: string | null;
  company: string | null; department: string | null; line1: string | null; line2: string | null;
  city: string | null; postalCode: string | null; country: string | null; phone: string | null;
}
export interface PaymentMethodsTable extends CollectionBase {
  brand: string | null; cardId: string | null; last4: string | null;
  // Stored as text since 0010 (encrypted); the API speaks numbers.
  expMonth: string | number | null; expYear: string | number | null; token: string | null;
}
export interface SubscriptionsTable extends CollectionBase {
  plan: string; status: 'active' | 'cancelled';
  giftRecipientEmail: string | null; giftRecipientFirstName: string | null; giftRecipientLastName: string | null;
  cancelledAt: Timestamp | null;
}
export interface MembershipsTable extends CollectionBase { name: string; role: string | null; status: string | null }
export interface SocialIdentitiesTable extends CollectionBase { provider: string; externalId: string }
export interface InvoicesTable extends CollectionBase {
  number: string; amountMinor: number; currency: string; status: 'open' | 'paid' | 'void';
}
export interface OrdersTable extends CollectionBase { number: string; amountMinor: number; currency: string }
export interface LicensesTable extends CollectionBase {
  applicationId: string; status: 'active' | 'cancelled'; cancelledAt: Timestamp | null;
}

export interface TransactionsTable {
  id: Generated<string>;
  customerId: string | null;
  customerRef: string | null;
  amountMinor: number;
  currency: string;
  status: 'pending' | 'succeeded' | 'failed';
  invoiceId: string | null;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

export interface ActivityTable {
  id: Generated<string>;
  customerId: string;
  type: string;
  recordId: string | null;
  details: Json<Record<string, unknown>>;
  createdAt: Timestamp;
}

export interface AuditEventsTable {
  seq: number;
  id: Generated<string>;
  type: string;
  actorKeyId: string | null;
  subjectType: string | null;
  subjectId: string | null;
  data: Json<Record<string, unknown>>;
  createdAt: Timestamp;
  prevHash: string;
  hash: string;
}

export interface DeletionsTable {
  customerId: string;
  deletedAt: Timestamp;
  actorKeyId: string | null;
  counts: Json<Record<string, number>>;
  preservedTransactions: number;
  applicationsNotified: Json<string[]>;
  auditEventId: string;
  auditHash: string;
  redaction: Json<Record<string, unknown>> | null;
  backupId: string | null;
  /** The system actor of a deletion Lethe did itself ("system:grace-periods"); null when a key deleted. */
  actor: Generated<string | null>;
  keyDestroyedAt: Timestamp | null;
  keyEpochId: string | null;
}

export interface IdempotencyKeysTable {
  apiKeyId: string;
  key: string;
  method: string;
  path: string;
  bodyHash: string;
  statusCode: number | null;
  responseBody: Json<unknown> | null;
  customerId: string | null;
  createdAt: Timestamp;
}

export interface AuditChainStateTable {
  id: number;
  /** The last event of release 1's unkeyed chain (0: the chain was keyed from its start). */
  legacyUntilSeq: number;
  rekeyedAt: Timestamp | null;
}

export interface BlobDeletionsTable {
  blobKey: string;
  requestedAt: Timestamp;
}

// Tables of later domains are declared beside their code and joined here.
export interface Database extends ErasureTables, WebhookTables, NotificationTables, BackupTables, EvidenceTables, CryptoTables, DeploymentTables {
  settings: SettingsTable;
  auditChainState: AuditChainStateTable;
  applications: ApplicationsTable;
  apiKeys: ApiKeysTable;
  apiKeyApplications: ApiKeyApplicationsTable;
  customers: CustomersTable;
  addresses: AddressesTable;
  paymentMethods: PaymentMethodsTable;
  subscriptions: SubscriptionsTable;
  memberships: MembershipsTable;
  socialIdentities: SocialIdentitiesTable;
  invoices: InvoicesTable;
  orders: OrdersTable;
  licenses: LicensesTable;
  transactions: TransactionsTable;
  activity: ActivityTable;
  auditEvents: AuditEventsTable;
  deletions: DeletionsTable;
  idempotencyKeys: IdempotencyKeysTable;
  blobDeletions: BlobDeletionsTable;
}

export type Customer = Selectable<CustomersTable>;
export type NewCustomer = Insertable<CustomersTable>;
export type CustomerUpdate = Updateable<CustomersTable>;
export type Application = Selectable<ApplicationsTable>;
export type Settings = Selectable<SettingsTable>;
