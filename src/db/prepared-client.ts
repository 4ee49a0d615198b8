import type { CompiledQuery } from 'kysely';
import pg from 'pg';

// Parameter arrays of statements that end their transaction (Kysely hands pg the compiled query's own array).
const lastStatements = new WeakSet<readonly unknown[]>();

/**
 * Marks `query` as its transaction's last statement: on PostgreSQL the COMMIT is queued right
 * behind it on the connection (pg sends it as soon as the statement completes, inside the socket's
 * read, without waiting for a turn of the event loop), and the transaction's own later `commit`
 * resolves with that COMMIT's outcome. A statement after it in the transaction is refused (it
 * would run outside the transaction). If the statement fails, the queued COMMIT ends the aborted
 * transaction as a ROLLBACK and the statement's error is what the caller sees. No effect on PGlite.
 */
export function commitAfter(query: CompiledQuery): CompiledQuery {
  lastStatements.add(query.parameters);
  return query;
}

// Parameter arrays of statements whose caller holds a lock every other transaction queues on.
const urgentStatements = new WeakSet<readonly unknown[]>();

/**
 * Marks `query` as taking (or running under) a lock that every deletion passes one at a time
 * (the audit chain's head read, the journal claim): its result is handed to its caller at once.
 * Every other statement's result is handed back one step later, in the event loop's check phase
 * (setImmediate). When several results arrive together, the lock holder's continuation then runs
 * before the other requests' work, instead of queuing behind it while the lock stays held (the
 * lock's hold time is what bounds deletions per second). No effect on PGlite.
 */
export function urgent(query: CompiledQuery): CompiledQuery {
  urgentStatements.add(query.parameters);
  return query;
}

/** A result handed back in the check phase of the event loop (see urgent). */
function inCheckPhase<T>(result: Promise<T>): Promise<T> {
  return result.then(
    (value) => new Promise<T>((resolve) => { setImmediate(resolve, value); }),
    (error: unknown) => new Promise<T>((_resolve, reject) => { setImmediate(reject, error); }),
  );
}

/**
 * A pg client that sends every statement Kysely compiles as a named prepared statement, so the
 * server parses and plans each distinct SQL text once per connection instead of once per call
 * (what `pgbench -M prepared`, the DELETE floor, does). Kysely always passes the SQL text and a
 * parameter array; the text alone names the statement, so the same text is the same statement.
 *
 * Bounded: at most MAX_PREPARED texts per connection (texts whose shape varies, such as IN lists
 * of different lengths, would otherwise grow the server's per-connection cache without end);
 * beyond that, statements go unnamed as before. Prepared statements survive a ROLLBACK (they are
 * protocol-level, not transactional), and TRUNCATE (a restore) keeps their result types.
 */
export const MAX_PREPARED = 256;

// Transaction control and session statements stay unnamed: nothing to plan.
const PLANNABLE = /^\s*(select|insert|update|delete|with)\b/i;

type Query = (...args: unknown[]) => unknown;

export class PreparingClient extends pg.Client {
  constructor(config?: string | pg.ClientConfig) {
    super(config);
    const names = new Map<string, string>();
    // The COMMIT queued behind a transaction's last statement (commitAfter), until the transaction's own commit takes it.
    let committing: Promise<unknown> | null = null;
    // A BEGIN not sent yet: it goes out with the transaction's first statement (see below).
    let beginPending = false;
    // Looked up at each call (not bound once), so a wrapper of pg.Client.prototype.query sees these calls too.
    const query = (...a: unknown[]) => (pg.Client.prototype.query as Query).apply(this, a);
    // pg's query overloads are many; this keeps its runtime contract and only rewrites
    // (text, values[]) into ({ name, text, values }).
    (this as unknown as { query: Query }).query = (...args: unknown[]) => {
      const [text, values, callback] = args;
      // BEGIN is answered at once and queued right before the transaction's first statement: pg
      // sends that statement as soon as BEGIN's answer arrives, inside the socket's read, so no turn
      // of the event loop (busy with other requests) passes between them. A BEGIN that fails (the
      // connection is gone) fails that first statement too.
      if (text === 'begin' && typeof callback !== 'function') {
        if (beginPending) return Promise.reject(new Error('begin: a transaction is already open on this connection'));
        beginPending = true;
        return Promise.resolve({ command: 'BEGIN', rowCount: null, rows: [] });
      }
      if (beginPending) {
        beginPending = false;
        const begun = query('begin') as Promise<unknown>;
        begun.catch(() => {});
        const result = (this as unknown as { query: Query }).query(...args) as Promise<unknown>;
        return Promise.all([begun, result]).then(([, r]) => r);
      }
      if (committing) {
        const queued = committing;
        committing = null;
        if (text === 'commit') return queued;
        // The last statement failed and the transaction is rolled back (the queued COMMIT already ended it).
        if (text === 'rollback') return queued.then(() => query(...args), () => query(...args));
        return Promise.reject(new Error(`a statement after its transaction's last statement (commitAfter): ${String(text).slice(0, 60)}`));
      }
      if (Array.isArray(values) && lastStatements.has(values) && typeof callback !== 'function') {
        const result = send(text as string, values);
        committing = query('COMMIT') as Promise<unknown>;
        committing.catch(() => {}); // observed by the transaction's commit; never an unhandled rejection
        return result;
      }
      if (Array.isArray(values) && typeof callback !== 'function' && !urgentStatements.has(values)) {
        return inCheckPhase(send(...args) as Promise<unknown>);
      }
      return send(...args);
    };
    const send = (...args: unknown[]) => {
      const [text, values, callback] = args;
      if (typeof text === 'string' && Array.isArray(values) && typeof callback !== 'function' && PLANNABLE.test(text)) {
        let name = names.get(text);
        if (name === undefined && names.size < MAX_PREPARED) {
          name = `lethe_${names.size}`;
          names.set(text, name);
        }
        if (name !== undefined) return query({ name, text, values });
      }
      return query(...args);
    };
  }
}
