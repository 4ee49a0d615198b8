// Issue 4 figures: the daily notification pass over 1,000,000 due cases, and signed webhook
// dispatch from the outbox vs graphile-worker running the same POSTs as jobs.
import type { GroupResult } from './lib.ts';

export interface NotifyOptions { cases: number; dispatchRows: number }

/** Why the group cannot run yet (null when it can). */
export async function notifyUnavailable(): Promise<string | null> {
  return 'deletion notifications and webhook dispatch (issue 4) have not landed';
}

export async function benchNotify(_o: NotifyOptions): Promise<GroupResult> {
  return { rows: [], numbers: {}, commands: [] };
}
