import type { Kysely } from 'kysely';
import { runDdl } from '../ddl.ts';

/**
 * Every run of a job is recorded (issue 19): job_runs (0007) held only the scheduled backups'
 * slot claims; now every run — `POST /v1/jobs/{job}/run` and every scheduler — writes one row.
 * - id: a stable id for the list's cursor (`GET /v1/job-runs`); runs that claim no slot use it as their slot.
 * - trigger: manual (the API) or scheduled; actor_key_id: the operator key of a manual run.
 * - outcome: running (the default: a claim or a run not finished yet), succeeded, failed, abandoned
 *   (still running long after it started: its process died; set by the retention job).
 * - result: the job's counts (numbers and booleans only, never personal data); error: a short
 *   error code of a failed run (never its message, which could quote data).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await runDdl(db, `
    ALTER TABLE job_runs ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid();
    ALTER TABLE job_runs ADD COLUMN trigger text NOT NULL DEFAULT 'scheduled';
    ALTER TABLE job_runs ADD COLUMN actor_key_id uuid;
    ALTER TABLE job_runs ADD COLUMN result jsonb;
    ALTER TABLE job_runs ADD COLUMN error text;
    UPDATE job_runs SET outcome = 'running' WHERE outcome IS NULL;
    ALTER TABLE job_runs ALTER COLUMN outcome SET DEFAULT 'running';
    ALTER TABLE job_runs ALTER COLUMN outcome SET NOT NULL;
    ALTER TABLE job_runs ADD CONSTRAINT job_runs_trigger_check CHECK (trigger IN ('manual', 'scheduled'));
    ALTER TABLE job_runs ADD CONSTRAINT job_runs_outcome_check CHECK (outcome IN ('running', 'succeeded', 'failed', 'abandoned'));
    CREATE UNIQUE INDEX job_runs_id_idx ON job_runs (id);
    CREATE INDEX job_runs_newest_idx ON job_runs (started_at DESC, id DESC);
    CREATE INDEX job_runs_job_newest_idx ON job_runs (job, started_at DESC, id DESC);
    CREATE INDEX job_runs_running_idx ON job_runs (started_at) WHERE outcome = 'running';
  `);
}
