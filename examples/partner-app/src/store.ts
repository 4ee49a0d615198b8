// The example application's own database (PGlite): a few records per customer, and a log of
// the deletions it carried out (so a repeated request answers the same outcome).
import { PGlite } from '@electric-sql/pglite';

export type Outcome = 'deleted' | 'no_data_held';

export async function openStore(dataDir?: string) {
  const db = dataDir ? new PGlite(dataDir) : new PGlite();
  await db.exec(`
    CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, customer_id text NOT NULL, body text NOT NULL);
    CREATE TABLE IF NOT EXISTS preferences (customer_id text PRIMARY KEY, theme text NOT NULL);
    CREATE TABLE IF NOT EXISTS erasures (customer_id text PRIMARY KEY, outcome text NOT NULL, at timestamptz NOT NULL DEFAULT now());
  `);
  return {
    db,
    /** Seeds a customer with a few records (what the application would have gathered). */
    async addCustomer(customerId: string, notes: string[]) {
      await db.transaction(async (tx) => {
        for (const body of notes) await tx.query('INSERT INTO notes (customer_id, body) VALUES ($1, $2)', [customerId, body]);
        await tx.query('INSERT INTO preferences (customer_id, theme) VALUES ($1, $2) ON CONFLICT DO NOTHING', [customerId, 'dark']);
      });
    },
    async countRecords(customerId: string): Promise<number> {
      const r = await db.query<{ n: number }>(
        'SELECT (SELECT count(*) FROM notes WHERE customer_id = $1)::int + (SELECT count(*) FROM preferences WHERE customer_id = $1)::int AS n',
        [customerId]);
      return r.rows[0]!.n;
    },
    /** Deletes every record of the customer in one transaction; idempotent (a repeat answers the first outcome). */
    async deleteCustomer(customerId: string): Promise<Outcome> {
      return db.transaction(async (tx) => {
        const done = await tx.query<{ outcome: Outcome }>('SELECT outcome FROM erasures WHERE customer_id = $1', [customerId]);
        const n1 = (await tx.query('DELETE FROM notes WHERE customer_id = $1', [customerId])).affectedRows ?? 0;
        const n2 = (await tx.query('DELETE FROM preferences WHERE customer_id = $1', [customerId])).affectedRows ?? 0;
        if (done.rows[0] && n1 + n2 === 0) return done.rows[0].outcome;
        const outcome: Outcome = n1 + n2 > 0 ? 'deleted' : 'no_data_held';
        await tx.query(`INSERT INTO erasures (customer_id, outcome) VALUES ($1, $2)
          ON CONFLICT (customer_id) DO UPDATE SET outcome = excluded.outcome, at = now()`, [customerId, outcome]);
        return outcome;
      });
    },
    close: () => db.close(),
  };
}
export type Store = Awaited<ReturnType<typeof openStore>>;
