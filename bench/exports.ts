// Issue 3 figures: a 1,000,000-row customers export (rows/s, the server's peak RSS) and the
// retention job's redaction of a backlog of soft-deleted customers.
import type { GroupResult } from './lib.ts';

export interface ExportOptions { rows: number; redactCustomers: number }

/** Why the group cannot run yet (null when it can). */
export async function exportsUnavailable(): Promise<string | null> {
  return 'exports and redaction (issue 3) have not landed';
}

export async function benchExports(_o: ExportOptions): Promise<GroupResult> {
  return { rows: [], numbers: {}, commands: [] };
}
