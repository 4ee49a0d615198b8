import crypto from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { canonicalJson } from './canonical-json.ts';

export const GENESIS_HASH = '0'.repeat(64);
// One advisory lock serializes appends so the chain never forks; held only until commit.
const AUDIT_LOCK = 0x4c455448; // "LETH"

export interface AuditInput {
  type: string;
  actorKeyId: string | null;
  subjectType?: string | null;
  subjectId?: string | null;
  /** Ids and counts only: never personal data. */
  data?: Record<string, unknown>;
  at: Date;
}

export interface AuditEvent {
  seq: number;
  id: string;
  type: string;
  actorKeyId: string | null;
  subjectType: string | null;
  subjectId: string | null;
  data: Record<string, unknown>;
  createdAt: Date;
  prevHash: string;
  hash: string;
}

export function hashEvent(e: Omit<AuditEvent, 'hash'>): string {
  const body = canonicalJson({
    seq: Number(e.seq), id: e.id, type: e.type, actorKeyId: e.actorKeyId, subjectType: e.subjectType,
    subjectId: e.subjectId, data: e.data, createdAt: new Date(e.createdAt).toISOString(),
  });
  return crypto.createHash('sha256').update(e.prevHash).update('\n').update(body).digest('hex');
}

// Transactions whose audit events are collected and appended together at the end (see deferAudit).
const deferred = new WeakMap<object, Array<{ id: string; input: AuditInput }>>();

/**
 * From now on in `trx`, appendAudit only collects events; flushAudit appends them, in order, as
 * the transaction's last statements. The chain's lock is then held from the flush to the commit
 * instead of from the first event on, so long transactions (a customer deletion) no longer
 * serialize each other. Only the `id` of an event returned while deferred is final.
 */
export function deferAudit(trx: Db): void {
  deferred.set(trx, []);
}

/** Takes the chain's lock until commit (batch jobs take it before their rows, to keep one lock order). */
export async function lockAuditChain(trx: Db): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(${AUDIT_LOCK})`.execute(trx);
}

/** Appends events in order under one lock and one read of the chain's end; ids may be given. */
async function appendChained(trx: Db, pending: Array<{ id: string; input: AuditInput }>): Promise<AuditEvent[]> {
  if (pending.length === 0) return [];
  await lockAuditChain(trx);
  const last = await trx.selectFrom('auditEvents').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
  let seq = last ? Number(last.seq) : 0;
  let prevHash = last?.hash ?? GENESIS_HASH;
  const events: AuditEvent[] = pending.map(({ id, input }) => {
    const event: Omit<AuditEvent, 'hash'> = {
      seq: ++seq, id, type: input.type, actorKeyId: input.actorKeyId, subjectType: input.subjectType ?? null,
      subjectId: input.subjectId ?? null, data: input.data ?? {}, createdAt: input.at, prevHash,
    };
    const full = { ...event, hash: hashEvent(event) };
    prevHash = full.hash;
    return full;
  });
  const rows = events.map((e) => ({ ...e, data: JSON.stringify(e.data) }));
  for (let i = 0; i < rows.length; i += 1000) await trx.insertInto('auditEvents').values(rows.slice(i, i + 1000)).execute();
  return events;
}

/** Appends several events at once (one round trip per 1,000), chained in the given order. */
export function appendAuditBatch(trx: Db, inputs: AuditInput[]): Promise<AuditEvent[]> {
  return appendChained(trx, inputs.map((input) => ({ id: crypto.randomUUID(), input })));
}

/** Appends the collected events of `trx` and then `more`, and ends deferral; returns all of them. */
export async function flushAudit(trx: Db, ...more: AuditInput[]): Promise<AuditEvent[]> {
  const pending = [...(deferred.get(trx) ?? []), ...more.map((input) => ({ id: crypto.randomUUID(), input }))];
  deferred.delete(trx);
  return appendChained(trx, pending);
}

/** Appends one event to the chain. Must run inside the transaction that makes the change. */
export async function appendAudit(trx: Db, input: AuditInput): Promise<AuditEvent> {
  const id = crypto.randomUUID();
  const collected = deferred.get(trx);
  if (collected) {
    collected.push({ id, input });
    return {
      seq: 0, id, type: input.type, actorKeyId: input.actorKeyId, subjectType: input.subjectType ?? null,
      subjectId: input.subjectId ?? null, data: input.data ?? {}, createdAt: input.at, prevHash: '', hash: '',
    };
  }
  const [event] = await appendChained(trx, [{ id, input }]);
  return event!;
}

/** Events after `afterSeq` in sequence order, or (desc) before it, newest first. */
export async function listAudit(db: Db, opts: { afterSeq: number; limit: number; subjectId?: string; type?: string; desc?: boolean }) {
  let q = db.selectFrom('auditEvents').selectAll().where('seq', opts.desc ? '<' : '>', opts.afterSeq);
  if (opts.subjectId) q = q.where('subjectId', '=', opts.subjectId);
  if (opts.type) q = q.where('type', '=', opts.type);
  const rows = await q.orderBy('seq', opts.desc ? 'desc' : 'asc').limit(opts.limit).execute();
  return rows.map((r) => ({ ...r, seq: Number(r.seq) })) as AuditEvent[];
}

/** Recomputes the whole chain; any edited, inserted or removed row breaks it. */
/** Every event type recorded so far, with its count (for the console's filters). */
export async function listAuditTypes(db: Db): Promise<Array<{ type: string; count: number }>> {
  const rows = await db.selectFrom('auditEvents').select((eb) => ['type', eb.fn.countAll<string>().as('count')])
    .groupBy('type').orderBy('type').execute();
  return rows.map((r) => ({ type: r.type, count: Number(r.count) }));
}

export async function verifyAudit(db: Db): Promise<{ valid: boolean; count: number; firstInvalidSeq: number | null }> {
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1;
  let count = 0;
  for (;;) {
    const rows = await listAudit(db, { afterSeq: expectedSeq - 1, limit: 1000 });
    for (const row of rows) {
      count++;
      if (row.seq !== expectedSeq || row.prevHash !== prevHash || hashEvent(row) !== row.hash) {
        return { valid: false, count, firstInvalidSeq: row.seq };
      }
      prevHash = row.hash;
      expectedSeq++;
    }
    if (rows.length < 1000) break;
  }
  return { valid: true, count, firstInvalidSeq: null };
}
