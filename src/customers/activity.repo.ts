import crypto from 'node:crypto';
import type { Db } from '../db/database.ts';
import { paginate, type PageQuery } from '../http/pagination.ts';

export interface ActivityInput {
  customerId: string;
  type: string;
  recordId?: string | null;
  details?: Record<string, unknown>;
  at: Date;
}

// Entries written in the same millisecond (one request often writes several) must still list in
// the order they happened: ids are UUIDv7-shaped, time-ordered and monotonic within the process,
// so the (createdAt, id) order of the log is the order of appending.
let lastMs = 0;
let counter = 0;
export function orderedId(at: Date): string {
  let ms = at.getTime();
  if (ms > lastMs) { lastMs = ms; counter = 0; } else if (++counter > 0xfff) { lastMs += 1; counter = 0; }
  ms = lastMs;
  const bytes = crypto.randomBytes(16);
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = 0x70 | (counter >> 8);
  bytes[7] = counter & 0xff;
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export async function appendActivity(db: Db, input: ActivityInput): Promise<void> {
  await db.insertInto('activity').values({
    id: orderedId(input.at),
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
