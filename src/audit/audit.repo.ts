import crypto from 'node:crypto';
import { type Compilable, CompiledQuery, type QueryCreator, sql } from 'kysely';
import { commitAfter, urgent } from '../db/prepared-client.ts';
import type { Db } from '../db/database.ts';
import type { Database } from '../db/schema.ts';
import { canonicalJson } from './canonical-json.ts';
import { keyObject } from '../crypto/key-object.ts';

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

/**
 * An event's hash: HMAC-SHA256 under the audit key (derived from the master key), so nobody
 * without it can recompute a rewritten chain. `key` null is release 1's unkeyed SHA-256, still
 * used to verify the events before the chain was re-keyed (see AUDIT_REKEYED).
 */
export function hashEvent(e: Omit<AuditEvent, 'hash'>, key: Buffer | null): string {
  const body = canonicalJson({
    seq: Number(e.seq), id: e.id, type: e.type, actorKeyId: e.actorKeyId, subjectType: e.subjectType,
    subjectId: e.subjectId, data: e.data, createdAt: new Date(e.createdAt).toISOString(),
  });
  const h = key ? crypto.createHmac('sha256', keyObject(key)) : crypto.createHash('sha256');
  return h.update(e.prevHash).update('\n').update(body).digest('hex');
}

/** The event that re-anchors a chain written by release 1 (unkeyed) under the audit key. */
export const AUDIT_REKEYED = 'audit.chain_rekeyed';

// The audit key of a database handle. Appends happen deep inside services' transactions, so the
// key is bound once to the handle (its dialect adapter, shared by the handle and its
// transactions) when the runtime opens it, instead of being passed through every call.
const auditKeys = new WeakMap<object, Buffer>();
const adapterOf = (db: Db): object => db.getExecutor().adapter;

/** Binds the audit key to a database handle; every append through it (and its transactions) is keyed. */
export function bindAuditKey(db: Db, key: Buffer): void {
  auditKeys.set(adapterOf(db), key);
}

export function auditKeyOf(db: Db): Buffer {
  const key = auditKeys.get(adapterOf(db));
  if (!key) throw new Error('The audit chain key is not bound to this database handle (bindAuditKey)');
  return key;
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

/**
 * A write that must name the appended events (a deletion receipt holds its event's id and hash),
 * built on `db` so that it runs in the same statement as the chain's last insert (a
 * data-modifying WITH): one round trip less while the chain's lock is held.
 */
export type AlongsideAudit = (db: QueryCreator<Database>, events: AuditEvent[]) => Compilable;

const CHUNK = 1000;

/**
 * Appends events in order under one lock and one read of the chain's end; ids may be given.
 *
 * The chain's lock is the one point every deletion passes through one at a time, so the work done
 * while it is held bounds how many deletions a second the whole service completes. The statement
 * of the last (usually only) chunk, with `alongside`, is therefore compiled BEFORE the lock, with
 * placeholders where the chain's position goes (seq, prev_hash, hash: unknown until the chain's end
 * is read); under the lock only the hashes are computed and the placeholders replaced. `commit`:
 * that statement is the transaction's last, and on PostgreSQL the COMMIT is sent right behind it
 * (prepared-client.ts), so no turn of the event loop, busy with other requests, runs between them.
 */
async function appendChained(trx: Db, pending: Array<{ id: string; input: AuditInput }>, alongside?: AlongsideAudit, commit = false): Promise<AuditEvent[]> {
  if (pending.length === 0) return [];
  const key = auditKeyOf(trx);
  const drafts: Array<Omit<AuditEvent, 'seq' | 'prevHash' | 'hash'>> = pending.map(({ id, input }) => ({
    id, type: input.type, actorKeyId: input.actorKeyId, subjectType: input.subjectType ?? null,
    subjectId: input.subjectId ?? null, data: input.data ?? {}, createdAt: input.at,
  }));
  const lastFrom = Math.floor((drafts.length - 1) / CHUNK) * CHUNK;
  // Placeholders: strings no real parameter can equal (a nonce per call; event data is passed as one JSON text).
  const nonce = crypto.randomBytes(12).toString('hex');
  const slot = (i: number, field: 'seq' | 'prev' | 'hash') => `\u0000lethe-chain:${nonce}:${i}:${field}`;
  const placeheld: AuditEvent[] = drafts.slice(lastFrom).map((d, j) => ({
    ...d, seq: slot(lastFrom + j, 'seq') as unknown as number, prevHash: slot(lastFrom + j, 'prev'), hash: slot(lastFrom + j, 'hash'),
  }));
  const rowsOf = (events: AuditEvent[]) => events.map((e) => ({ ...e, data: JSON.stringify(e.data) }));
  const lastStatement = alongside
    ? alongside(trx.with('appended_audit_events', (db) => db.insertInto('auditEvents').values(rowsOf(placeheld))) as unknown as QueryCreator<Database>, placeheld)
    : trx.insertInto('auditEvents').values(rowsOf(placeheld));
  const compiled = lastStatement.compile();

  // The chain's lock, then its end as the last holder committed it: one round trip (migration 0016).
  // Urgent: this caller holds the lock from here on; its continuation must not queue behind other requests' work.
  const head = urgent(sql<{ seq: string; hash: string }>`SELECT seq, hash FROM lethe_audit_head(${AUDIT_LOCK})`.compile(trx));
  const last = (await trx.executeQuery<{ seq: string; hash: string }>(head)).rows[0];
  let seq = last ? Number(last.seq) : 0;
  let prevHash = last?.hash ?? GENESIS_HASH;
  const events: AuditEvent[] = drafts.map((d) => {
    const event = { ...d, seq: ++seq, prevHash };
    const full = { ...event, hash: hashEvent(event, key) };
    prevHash = full.hash;
    return full;
  });
  for (let i = 0; i < lastFrom; i += CHUNK) await trx.insertInto('auditEvents').values(rowsOf(events.slice(i, i + CHUNK))).execute();
  const fill = new Map<unknown, unknown>();
  for (let i = lastFrom; i < events.length; i++) {
    const e = events[i]!;
    fill.set(slot(i, 'seq'), e.seq).set(slot(i, 'prev'), e.prevHash).set(slot(i, 'hash'), e.hash);
  }
  const parameters = compiled.parameters.map((v: unknown) => (fill.has(v) ? fill.get(v) : v));
  // Kysely passes values as parameters, never in the text; a placeholder there would be written as is.
  if (compiled.sql.includes(nonce)) throw new Error('audit: a chain placeholder reached the statement text');
  const filled = CompiledQuery.raw(compiled.sql, parameters);
  if (commit) commitAfter(filled);
  await trx.executeQuery(filled);
  return events;
}

/** Appends several events at once (one round trip per 1,000), chained in the given order. */
export function appendAuditBatch(trx: Db, inputs: AuditInput[]): Promise<AuditEvent[]> {
  return appendChained(trx, inputs.map((input) => ({ id: crypto.randomUUID(), input })));
}

/** Appends the collected events of `trx` and then `more`, and ends deferral; returns all of them. */
export async function flushAudit(trx: Db, ...more: AuditInput[]): Promise<AuditEvent[]> {
  return flushAuditWith(trx, more);
}

/**
 * flushAudit, with `alongside` written in the statement of the chain's last insert (see
 * AlongsideAudit). `commit`: that statement is the transaction's last one (see appendChained);
 * nothing may run in `trx` after it.
 */
export async function flushAuditWith(trx: Db, more: AuditInput[], alongside?: AlongsideAudit, commit = false): Promise<AuditEvent[]> {
  const pending = [...(deferred.get(trx) ?? []), ...more.map((input) => ({ id: crypto.randomUUID(), input }))];
  deferred.delete(trx);
  return appendChained(trx, pending, alongside, commit);
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

/** Every event type recorded so far, with its count (for the console's filters). */
export async function listAuditTypes(db: Db): Promise<Array<{ type: string; count: number }>> {
  const rows = await db.selectFrom('auditEvents').select((eb) => ['type', eb.fn.countAll<string>().as('count')])
    .groupBy('type').orderBy('type').execute();
  return rows.map((r) => ({ type: r.type, count: Number(r.count) }));
}

/**
 * Re-anchors a chain written by release 1 (unkeyed SHA-256) once: appends an audited, keyed
 * `audit.chain_rekeyed` event naming the last unkeyed event and its hash. Rewriting any earlier
 * event changes that hash, which the keyed event (and the checkpoints) no longer match.
 * Idempotent; migration 0006 recorded where the unkeyed part ends.
 */
export async function reanchorAuditChain(db: Db, at: Date): Promise<AuditEvent | null> {
  return db.transaction().execute((trx) => reanchorIn(trx, at));
}

/** reanchorAuditChain inside the caller's transaction (a restore of a release-1 backup). */
export async function reanchorIn(trx: Db, at: Date): Promise<AuditEvent | null> {
  {
    await lockAuditChain(trx);
    const state = await trx.selectFrom('auditChainState').selectAll().where('id', '=', 1).forUpdate().executeTakeFirst();
    if (!state || state.rekeyedAt !== null || Number(state.legacyUntilSeq) === 0) return null;
    const legacyUntilSeq = Number(state.legacyUntilSeq);
    const last = await trx.selectFrom('auditEvents').select(['seq', 'hash']).where('seq', '=', legacyUntilSeq).executeTakeFirst();
    const event = await appendAudit(trx, {
      type: AUDIT_REKEYED, actorKeyId: null, at,
      data: { legacyUntilSeq, legacyHeadHash: last?.hash ?? null, algorithm: 'hmac-sha256', reason: 'issue 17: keyed chain' },
    });
    await trx.updateTable('auditChainState').set({ rekeyedAt: at }).where('id', '=', 1).execute();
    return event;
  }
}

export interface ChainCheck { valid: boolean; count: number; firstInvalidSeq: number | null; head: { seq: number; hash: string } | null; legacyUntilSeq: number }

/**
 * Recomputes the whole chain; any edited, inserted or removed row breaks it. Events up to the
 * re-anchoring are release 1's unkeyed hashes; the re-anchoring event and all later ones are keyed.
 */
export async function verifyChain(db: Db, key: Buffer): Promise<ChainCheck> {
  const state = await db.selectFrom('auditChainState').selectAll().where('id', '=', 1).executeTakeFirst();
  const legacyUntilSeq = Number(state?.legacyUntilSeq ?? 0);
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1;
  let count = 0;
  let head: ChainCheck['head'] = null;
  const invalid = (seq: number) => ({ valid: false, count, firstInvalidSeq: seq, head, legacyUntilSeq });
  for (;;) {
    const rows = await listAudit(db, { afterSeq: expectedSeq - 1, limit: 1000 });
    for (const row of rows) {
      count++;
      const keyed = row.seq > legacyUntilSeq;
      if (row.seq !== expectedSeq || row.prevHash !== prevHash || hashEvent(row, keyed ? key : null) !== row.hash) return invalid(row.seq);
      // The keyed part starts with the re-anchoring event, naming exactly where the unkeyed part ended.
      if (legacyUntilSeq > 0 && row.seq === legacyUntilSeq + 1
        && (row.type !== AUDIT_REKEYED || Number(row.data.legacyUntilSeq) !== legacyUntilSeq)) return invalid(row.seq);
      prevHash = row.hash;
      head = { seq: row.seq, hash: row.hash };
      expectedSeq++;
    }
    if (rows.length < 1000) break;
  }
  // An unkeyed part must be followed by its re-anchoring event (else anyone could have rewritten it all).
  if (legacyUntilSeq > 0 && (head?.seq ?? 0) <= legacyUntilSeq) return invalid(head?.seq ?? 0);
  return { valid: true, count, firstInvalidSeq: null, head, legacyUntilSeq };
}

/** Serializes checkpoint and fork lines (checkpoints.ts) across instances until commit. */
const CHECKPOINT_LOCK = 0x4c434b50; // "LCKP"
export async function lockCheckpoints(trx: Db): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(${CHECKPOINT_LOCK})`.execute(trx);
}

/** The chain's last event (seq and hash), or null when it is empty. */
export async function chainHead(db: Db): Promise<{ seq: number; hash: string } | null> {
  const row = await db.selectFrom('auditEvents').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
  return row ? { seq: Number(row.seq), hash: row.hash } : null;
}

export async function eventHashAt(db: Db, seq: number): Promise<string | undefined> {
  return (await db.selectFrom('auditEvents').select('hash').where('seq', '=', seq).executeTakeFirst())?.hash;
}

/** Hashes of the events at these seqs (those that exist). */
export async function eventHashesAt(db: Db, seqs: number[]): Promise<Map<number, string>> {
  const rows = seqs.length ? await db.selectFrom('auditEvents').select(['seq', 'hash']).where('seq', 'in', seqs).execute() : [];
  return new Map(rows.map((r) => [Number(r.seq), r.hash]));
}

/** Every deletion receipt with the audit event it names (null columns when that event is missing). */
export function deletionReceiptsWithEvents(db: Db) {
  return db.selectFrom('deletions').leftJoin('auditEvents', 'auditEvents.id', 'deletions.auditEventId')
    .select(['deletions.customerId', 'deletions.auditHash', 'auditEvents.hash as eventHash', 'auditEvents.seq as eventSeq',
      'auditEvents.type as eventType', 'auditEvents.subjectId as eventSubject']).execute();
}
