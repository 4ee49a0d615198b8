import type { CompiledQuery } from 'kysely';
import pg from 'pg';

// Parameter arrays of statements that end their transaction (Kysely hands pg the compiled query's own array).
const lastStatements = new WeakSet<readonly unknown[]>();

/**
 * Marks `query` as its transaction's last statement: on PostgreSQL the COMMIT goes out in the same
 * write as the statement (PipelinedQuery: the server runs it right after the statement, with no
 * round trip to Node between them; on a connection's first such transaction, before COMMIT is
 * prepared there, it is queued right behind the statement instead), and the transaction's own
 * later `commit` resolves with that COMMIT's outcome. A statement after it in the transaction is
 * refused (it would run outside the transaction). If the statement fails, nothing is committed and
 * the statement's error is what the caller sees; if the COMMIT fails, its error is. No effect on PGlite.
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

// Transaction control, prepared once per connection under these names (outside the lethe_ names
// and the cap) so that later transactions can send it inside another statement's write.
const BEGIN_STATEMENT = 'tx_begin';
const COMMIT_STATEMENT = 'tx_commit';

/** The internals of pg's Query and Connection a pipelined statement uses (pg 8). */
interface PgConnection { parsedStatements: Record<string, string>; bind(config: object): void; execute(config: object): void; sync(): void }
interface PgQuery {
  portal: string;
  callback?: (error: Error | null, result?: unknown) => void;
  prepare(connection: PgConnection): void;
  _getRows(connection: PgConnection, rows?: number): void;
  handleCommandComplete(message: unknown, connection: PgConnection): void;
}
const PgQueryClass = (pg as unknown as { Query: new (config: object) => PgQuery }).Query;

/**
 * One statement sent in a single write with its transaction's BEGIN before it and/or its COMMIT
 * after it (extended protocol: Bind/Execute of the prepared control statements, one Sync at the
 * end), so the server runs them back to back without a round trip to Node between them. Their
 * CommandComplete messages are consumed here: the caller sees the statement's result only. If the
 * statement fails, the server skips the COMMIT up to the Sync (the transaction stays open and
 * failed, for its ROLLBACK); if the COMMIT fails, that error is the statement's.
 */
class PipelinedQuery extends PgQueryClass {
  private phase: 'begin' | 'statement' | 'commit' | 'done';
  readonly withBegin: boolean;
  readonly withCommit: boolean;
  committed = false;
  constructor(config: object, withBegin: boolean, withCommit: boolean) {
    super({ ...config, queryMode: 'extended' });
    this.withBegin = withBegin;
    this.withCommit = withCommit;
    this.phase = withBegin ? 'begin' : 'statement';
  }
  override prepare(connection: PgConnection): void {
    if (this.withBegin) {
      connection.bind({ portal: '', statement: BEGIN_STATEMENT, values: [] });
      connection.execute({ portal: '' });
    }
    super.prepare(connection);
  }
  override _getRows(connection: PgConnection, rows?: number): void {
    if (!this.withCommit || rows) { super._getRows(connection, rows); return; }
    connection.execute({ portal: this.portal, rows });
    connection.bind({ portal: '', statement: COMMIT_STATEMENT, values: [] });
    connection.execute({ portal: '' });
    connection.sync();
  }
  override handleCommandComplete(message: unknown, connection: PgConnection): void {
    if (this.phase === 'begin') { this.phase = 'statement'; return; }
    if (this.phase === 'commit') { this.phase = 'done'; this.committed = true; return; }
    this.phase = this.withCommit ? 'commit' : 'done';
    super.handleCommandComplete(message, connection);
  }
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
      // A statement as Kysely sends it: text, parameters, answer as a promise.
      const statement = typeof text === 'string' && Array.isArray(values) && typeof callback !== 'function';
      // BEGIN is answered at once and goes out with the transaction's first statement, in the same
      // write (PipelinedQuery), once this connection has it prepared; before that (its first
      // transaction) it is queued right before that statement, which pg sends as soon as BEGIN's
      // answer arrives, inside the socket's read. A BEGIN that fails fails that first statement too.
      if (text === 'begin' && typeof callback !== 'function') {
        if (beginPending) return Promise.reject(new Error('begin: a transaction is already open on this connection'));
        beginPending = true;
        return Promise.resolve({ command: 'BEGIN', rowCount: null, rows: [] });
      }
      if (beginPending) {
        beginPending = false;
        const last = statement && lastStatements.has(values as unknown[]);
        if (statement && prepared(last ? [BEGIN_STATEMENT, COMMIT_STATEMENT] : [BEGIN_STATEMENT])) {
          return pipelined(text as string, values as unknown[], true, last);
        }
        // Until this connection has its control statements prepared: BEGIN as its own statement (preparing it).
        const begun = query({ name: BEGIN_STATEMENT, text: 'BEGIN' }) as Promise<unknown>;
        begun.catch(() => {});
        const result = (this as unknown as { query: Query }).query(...args) as Promise<unknown>;
        return Promise.all([begun, result]).then(([, r]) => r);
      }
      if (committing) {
        const queued = committing;
        committing = null;
        if (text === 'commit') return queued;
        // The last statement failed: the transaction is rolled back (a queued COMMIT ended it; one in
        // the statement's write was skipped, and this ROLLBACK ends it).
        if (text === 'rollback') return queued.then(() => query(...args), () => query(...args));
        return Promise.reject(new Error(`a statement after its transaction's last statement (commitAfter): ${String(text).slice(0, 60)}`));
      }
      if (statement && lastStatements.has(values as unknown[])) {
        if (prepared([COMMIT_STATEMENT])) return pipelined(text as string, values as unknown[], false, true);
        const result = send(text, values);
        committing = query({ name: COMMIT_STATEMENT, text: 'COMMIT' }) as Promise<unknown>;
        committing.catch(() => {}); // observed by the transaction's commit; never an unhandled rejection
        return result;
      }
      if (statement && !urgentStatements.has(values as unknown[])) {
        return inCheckPhase(send(...args) as Promise<unknown>);
      }
      return send(...args);
    };
    const nameOf = (text: string): string | undefined => {
      if (!PLANNABLE.test(text)) return undefined;
      let name = names.get(text);
      if (name === undefined && names.size < MAX_PREPARED) {
        name = `lethe_${names.size}`;
        names.set(text, name);
      }
      return name;
    };
    const send = (...args: unknown[]) => {
      const [text, values, callback] = args;
      if (typeof text === 'string' && Array.isArray(values) && typeof callback !== 'function') {
        const name = nameOf(text);
        if (name !== undefined) return query({ name, text, values });
      }
      return query(...args);
    };
    // A statement can go out with BEGIN and/or COMMIT once pg has those prepared on this connection.
    const prepared = (controls: string[]) => {
      const parsed = (this as unknown as { connection: PgConnection }).connection.parsedStatements;
      return controls.every((c) => parsed[c] !== undefined);
    };
    const pipelined = (text: string, values: unknown[], withBegin: boolean, withCommit: boolean): Promise<unknown> => {
      const q = new PipelinedQuery({ name: nameOf(text), text, values }, withBegin, withCommit);
      const result = new Promise<unknown>((resolve, reject) => { q.callback = (error, r) => (error ? reject(error) : resolve(r)); });
      if (withCommit) {
        committing = result.then((): unknown => {
          if (!q.committed) throw new Error('the transaction\'s COMMIT did not run');
          return { command: 'COMMIT', rowCount: null, rows: [] };
        });
        committing.catch(() => {}); // observed by the transaction's commit; never an unhandled rejection
      }
      query(q);
      return withCommit || urgentStatements.has(values) ? result : inCheckPhase(result);
    };
  }
}
