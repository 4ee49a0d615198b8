import crypto from 'node:crypto';
import type { FieldCrypto } from '../crypto/field-crypto.ts';
import type { Db } from '../db/database.ts';
import { paginate, type PageQuery } from '../http/pagination.ts';

export interface ActivityInput {
  customerId: string;
  type: string;
  recordId?: string | null;
  details?: Record<string, unknown>;
  at: Date;
  /** The entry's id when the caller made it (orderedId); else one is made here. */
  id?: string;
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

/** Appends an entry; its details are encrypted under the customer's key (they may name the person). */
export async function appendActivity(db: Db, fc: FieldCrypto, input: ActivityInput): Promise<void> {
  const id = input.id ?? orderedId(input.at);
  const dek = await fc.keyFor(db, input.customerId, input.at);
  await db.insertInto('activity').values({
    id,
    customerId: input.customerId,
    type: input.type,
    recordId: input.recordId ?? null,
    ...fc.encryptRow('activity', { details: input.details ?? {} }, id, dek),
    createdAt: input.at,
  } as never).execute();
}

export async function listActivity(db: Db, fc: FieldCrypto, customerId: string, page: PageQuery) {
  const result = await paginate(
    db.selectFrom('activity').select(['id', 'customerId', 'type', 'recordId', 'details', 'createdAt'])
      .where('customerId', '=', customerId),
    'activity', page,
  );
  return { data: await fc.decryptRows(db, 'activity', result.data, (r) => r.customerId, (r) => r.id), nextCursor: result.nextCursor };
}
