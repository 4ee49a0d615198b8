import type { Timestamp } from '../db/schema.ts';

export interface StoredFilesTable {
  key: string;
  content: Buffer;
  sizeBytes: number;
  createdAt: Timestamp;
}

export interface DeploymentTable {
  id: number;
  keyFingerprint: string | null;
  backupMarkerId: string | null;
  updatedAt: Timestamp;
}

export interface JobRunsTable {
  job: string;
  slot: string;
  instanceId: string;
  startedAt: Timestamp;
  finishedAt: Timestamp | null;
  outcome: string | null;
}

/** Kysely types of the tables of migration 0007 (joined into Database in src/db/schema.ts). */
export interface DeploymentTables {
  storedFiles: StoredFilesTable;
  deployment: DeploymentTable;
  jobRuns: JobRunsTable;
}
