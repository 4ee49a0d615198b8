import type { ColumnType, Generated } from 'kysely';
import type { Timestamp } from '../db/schema.ts';

export interface BackupArchivesTable {
  id: Generated<string>;
  customerId: string;
  createdAt: Timestamp;
  expiresAt: Timestamp;
  blobKey: string | null;
  sealed: Buffer | null;
  sizeBytes: number;
  keyFingerprint: string;
  /** Epoch key that sealed it (NULL: sealed by release 1 under the master-derived backup key). */
  keyEpochId: Generated<string | null>;
  destroyedAt: Timestamp | null;
}

export interface ErasureJournalTable {
  seq: Generated<number>;
  id: string;
  kind: 'deletion' | 'confirmation' | 'record';
  customerId: string;
  caseId: string | null;
  applicationId: string | null;
  actorKeyId: string | null;
  at: Timestamp;
  recordedAt: Timestamp;
  /** When the entry reached the shared journal file; null while pending (migration 0007). */
  fileAppendedAt: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  /** A confirmation's outcome (null for deletions and for confirmations journaled before migration 0009). */
  outcome: 'deleted' | 'no_data_held' | null;
  /** kind 'record': the SQL table and id of the record removed one by one. */
  recordTable: Generated<string | null>;
  recordId: Generated<string | null>;
}

/** Kysely types of the tables this domain adds (joined into Database in src/db/schema.ts). */
export interface BackupTables {
  backupArchives: BackupArchivesTable;
  erasureJournal: ErasureJournalTable;
}
