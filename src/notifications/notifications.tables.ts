import type { Generated } from 'kysely';
import type { Timestamp } from '../db/schema.ts';

export type CaseStatus = 'grace' | 'required' | 'confirmed' | 'revoked';
export type CaseReason = 'grace_expired' | 'customer_deleted';
/** What the application did: deleted its copy, or held nothing about the customer. */
export type ConfirmationOutcome = 'deleted' | 'no_data_held';

/** One row per (customer, application); a later cancellation reopens it for a fresh grace period. */
export interface DeletionCasesTable {
  id: Generated<string>;
  customerId: string;
  applicationId: string;
  status: CaseStatus;
  reason: CaseReason | null;
  graceStartedAt: Timestamp | null;
  graceEndsAt: Timestamp | null;
  requiredSince: Timestamp | null;
  revokedAt: Timestamp | null;
  confirmedAt: Timestamp | null;
  confirmedByKeyId: string | null;
  /** Local calendar day (YYYY-MM-DD, settings.notificationTimeZone) of the last notification. */
  lastNotifiedDay: string | null;
  lastNotifiedAt: Timestamp | null;
  /** Outcome of the confirmation that closed the case; null while open. */
  outcome: ConfirmationOutcome | null;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

/** Every confirmation ever made: kept forever, ids and times only. */
export interface DeletionConfirmationsTable {
  id: Generated<string>;
  caseId: string;
  customerId: string;
  applicationId: string;
  keyId: string;
  reason: CaseReason | null;
  requiredSince: Timestamp | null;
  confirmedAt: Timestamp;
  outcome: Generated<ConfirmationOutcome>;
}

/** Kysely types of the tables this domain adds (joined into Database in src/db/schema.ts). */
export interface NotificationTables {
  deletionCases: DeletionCasesTable;
  deletionConfirmations: DeletionConfirmationsTable;
}
