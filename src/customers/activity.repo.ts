import type { Db } from '../db/database.ts';
import { paginate, type PageQuery } from '../http/pagination.ts';

export interface ActivityInput {
  customerId: string;
  type: string;
  recordId?: string | null;
  details?: Record<string, unknown>;
  at: Date;
}

export async function appendActivity(db: Db, input: ActivityInput): Promise<void> {
  await db.insertInto('activity').values({
    customerId: input.customerId,
    type: input.type,
    recordId: input.recordId ?? null,
    details: JSON.stringify(input.details ?? {}),
    createdAt: input.at,
  }).execute();
}

export function listActivity(db: Db, customerId: string, page: PageQuery) {
  return paginate(
    db.selectFrom('activity').select(['id', 'customerId', 'type', 'recordId', 'details', 'createdAt'])
      .where('customerId', '=', customerId),
    'activity', page,
  );
}
