import type { ColumnType, Generated } from 'kysely';
import type { Json, Timestamp } from '../db/schema.ts';

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

export type JobTrigger = 'manual' | 'scheduled';
export type JobOutcome = 'running' | 'succeeded' | 'failed' | 'abandoned';

/** Every run of a job (migrations 0007 and 0015): manual and scheduled runs, and the backups' slot claims. */
export interface JobRunsTable {
  id: Generated<string>;
  job: string;
  slot: string;
  instanceId: string;
  startedAt: Timestamp;
  finishedAt: Timestamp | null;
  outcome: ColumnType<JobOutcome, JobOutcome | undefined, JobOutcome>;
  trigger: ColumnType<JobTrigger, JobTrigger | undefined, JobTrigger>;
  actorKeyId: string | null;
  /** The job's counts (numbers and booleans only). */
  result: Json<JobRunResult> | null;
  error: string | null;
}

export interface JobRunResult { [key: string]: number | boolean | JobRunResult }

/** Kysely types of the tables of migration 0007 (joined into Database in src/db/schema.ts). */
export interface DeploymentTables {
  storedFiles: StoredFilesTable;
  deployment: DeploymentTable;
  jobRuns: JobRunsTable;
}
