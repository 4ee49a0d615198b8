import pg from 'pg';

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
    // Looked up at each call (not bound once), so a wrapper of pg.Client.prototype.query sees these calls too.
    const query = (...a: unknown[]) => (pg.Client.prototype.query as Query).apply(this, a);
    // pg's query overloads are many; this keeps its runtime contract and only rewrites
    // (text, values[]) into ({ name, text, values }).
    (this as unknown as { query: Query }).query = (...args: unknown[]) => {
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
