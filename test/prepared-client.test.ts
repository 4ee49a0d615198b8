// The PostgreSQL pool's client prepares each distinct statement once per connection
// (src/db/prepared-client.ts): checked in the server's own view of the connection's prepared
// statements, with the cap, failing statements and transactions.
import { CompiledQuery, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type DatabaseHandle } from '../src/db/database.ts';
import { commitAfter, MAX_PREPARED, PreparingClient, urgent } from '../src/db/prepared-client.ts';
import { someoneWaitsOnAdvisoryLock } from './helpers/lock-waits.ts';
import { createPgDatabase, TEST_DB } from './helpers/runtime.ts';

// PGlite runs in process: there is no connection to prepare statements on.
describe.runIf(TEST_DB === 'postgres')('prepared statements on PostgreSQL', () => {
  let pgdb: Awaited<ReturnType<typeof createPgDatabase>>;
  let handle: DatabaseHandle;
  beforeAll(async () => {
    pgdb = await createPgDatabase();
    handle = await openDatabase({ databaseUrl: pgdb.url, poolSize: 1 });
  });
  afterAll(async () => { await handle?.close(); await pgdb?.drop(); });

  const prepared = async () => (await sql<{ statement: string }>`SELECT statement FROM pg_prepared_statements WHERE name LIKE 'lethe_%'`
    .execute(handle.db)).rows.map((r) => r.statement);

  it('a statement run twice is prepared once, and keeps answering with new parameters', async () => {
    const q = (n: number) => sql<{ v: number }>`SELECT ${n}::int + 1 AS v`.execute(handle.db);
    expect((await q(1)).rows[0]!.v).toBe(2);
    expect((await q(41)).rows[0]!.v).toBe(42);
    const texts = await prepared();
    expect(texts.filter((t) => t.includes('::int + 1 AS v'))).toHaveLength(1);
  });

  it('a statement failing at run time or at parse time leaves the connection usable, inside and outside a transaction', async () => {
    const div = (n: number) => sql<{ v: number }>`SELECT 10 / ${n}::int AS v`.execute(handle.db);
    await expect(div(0)).rejects.toThrow(/division by zero/);
    expect((await div(5)).rows[0]!.v).toBe(2);
    await expect(sql`SELECT nope FROM nowhere WHERE 1 = ${1}`.execute(handle.db)).rejects.toThrow(/nowhere/);
    expect((await div(2)).rows[0]!.v).toBe(5);
    // A transaction rolled back after a failure: the statement prepared inside it still works.
    await expect(handle.db.transaction().execute(async (trx) => {
      expect((await sql<{ v: number }>`SELECT 7 * ${3}::int AS v`.execute(trx)).rows[0]!.v).toBe(21);
      await sql`SELECT 10 / ${0}::int`.execute(trx);
    })).rejects.toThrow(/division by zero/);
    expect((await sql<{ v: number }>`SELECT 7 * ${4}::int AS v`.execute(handle.db)).rows[0]!.v).toBe(28);
    // Transaction control is never prepared under a statement's name (BEGIN and COMMIT have their own, tx_begin and tx_commit).
    expect((await prepared()).some((t) => /^\s*(begin|commit|rollback)/i.test(t))).toBe(false);
  });

  it(`at most ${MAX_PREPARED} statements per connection; beyond that they run unprepared`, async () => {
    const client = new PreparingClient({ connectionString: pgdb.url });
    await client.connect();
    try {
      for (let i = 0; i < MAX_PREPARED + 20; i++) {
        const r = await client.query(`SELECT $1::int + ${i} AS v`, [1]);
        expect(r.rows[0].v).toBe(1 + i);
      }
      const count = Number((await client.query(`SELECT count(*) AS c FROM pg_prepared_statements`)).rows[0].c);
      expect(count).toBe(MAX_PREPARED);
      // A text seen before the cap stays prepared and answers.
      expect((await client.query(`SELECT $1::int + 0 AS v`, [5])).rows[0].v).toBe(5);
    } finally {
      await client.end();
    }
  });

  describe('a transaction\'s last statement with its COMMIT right behind it (commitAfter)', () => {
    let other: pg.Client;
    beforeAll(async () => {
      // Deferred: a duplicate is only refused by the COMMIT itself.
      await sql`CREATE TABLE last_rows (id int, CONSTRAINT last_rows_once UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)`.execute(handle.db);
      other = new pg.Client({ connectionString: pgdb.url });
      await other.connect();
    });
    afterAll(async () => { await other?.end(); });
    const insert = (id: number) => CompiledQuery.raw('INSERT INTO last_rows (id) VALUES ($1)', [id]);
    const seen = async (id: number) => Number((await other.query('SELECT count(*) AS c FROM last_rows WHERE id = $1', [id])).rows[0].c);

    it('is committed as soon as the statement answers, before the transaction\'s own commit; the transaction then resolves', async () => {
      let committedEarly = -1;
      await handle.db.transaction().execute(async (trx) => {
        await trx.executeQuery(insert(1));
        await trx.executeQuery(commitAfter(insert(2)));
        // Another connection sees both rows while the callback has not returned yet: the COMMIT
        // went out behind the statement (it may still be running when the statement answers).
        for (let i = 0; i < 200 && committedEarly < 2; i++) {
          committedEarly = await seen(2) + await seen(1);
          if (committedEarly < 2) await new Promise((r) => setTimeout(r, 10));
        }
      });
      expect(committedEarly).toBe(2);
      expect(await seen(1) + await seen(2)).toBe(2);
    });

    it('a failing last statement commits nothing, and the connection keeps working', async () => {
      await expect(handle.db.transaction().execute(async (trx) => {
        await trx.executeQuery(insert(3));
        await trx.executeQuery(commitAfter(CompiledQuery.raw('INSERT INTO last_rows (id) VALUES (10 / $1::int)', [0])));
      })).rejects.toThrow(/division by zero/);
      expect(await seen(3)).toBe(0);
      await handle.db.transaction().execute(async (trx) => { await trx.executeQuery(commitAfter(insert(4))); });
      expect(await seen(4)).toBe(1);
    });

    it('a COMMIT that fails is the transaction\'s error, and nothing of it stays', async () => {
      await expect(handle.db.transaction().execute(async (trx) => {
        await trx.executeQuery(insert(5));
        await trx.executeQuery(commitAfter(insert(1))); // a duplicate of a committed row: refused at COMMIT
      })).rejects.toThrow(/last_rows_once/);
      expect(await seen(5)).toBe(0);
      expect(await seen(1)).toBe(1);
    });

    it('BEGIN goes out with the first statement: that statement is inside the transaction; an empty transaction commits', async () => {
      await expect(handle.db.transaction().execute(async (trx) => {
        await trx.executeQuery(insert(20)); // the first statement: rolled back with the transaction
        await sql`SELECT 10 / ${0}::int`.execute(trx);
      })).rejects.toThrow(/division by zero/);
      expect(await seen(20)).toBe(0);
      await handle.db.transaction().execute(async () => {});
      const [a, b] = await handle.db.transaction().execute(async (trx) => [
        (await sql<{ x: string }>`SELECT txid_current()::text AS x`.execute(trx)).rows[0]!.x,
        (await sql<{ x: string }>`SELECT txid_current()::text AS x`.execute(trx)).rows[0]!.x,
      ]);
      expect(a).toBe(b); // one transaction, begun before its first statement
    });

    it('a statement after the last one is refused, not run outside the transaction', async () => {
      await expect(handle.db.transaction().execute(async (trx) => {
        await trx.executeQuery(commitAfter(insert(6)));
        await trx.executeQuery(insert(7));
      })).rejects.toThrow(/after its transaction's last statement/);
      expect(await seen(6)).toBe(1);
      expect(await seen(7)).toBe(0);
      expect((await sql<{ v: number }>`SELECT ${8}::int AS v`.execute(handle.db)).rows[0]!.v).toBe(8);
    });
  });

  describe('BEGIN and COMMIT in the same write as the first and last statements, once prepared on the connection', () => {
    let client: PreparingClient;
    let other: pg.Client;
    let roundTrips = 0;
    beforeAll(async () => {
      await sql`CREATE TABLE piped_rows (id int, CONSTRAINT piped_rows_once UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)`.execute(handle.db);
      client = new PreparingClient({ connectionString: pgdb.url });
      await client.connect();
      // Every round trip ends with one ReadyForQuery from the server.
      (client as unknown as { connection: { on(e: string, f: () => void): void } }).connection.on('readyForQuery', () => { roundTrips++; });
      other = new pg.Client({ connectionString: pgdb.url });
      await other.connect();
    });
    afterAll(async () => { await client?.end(); await other?.end(); });
    const insertText = 'INSERT INTO piped_rows (id) VALUES ($1)';
    const seen = async (id: number) => Number((await other.query('SELECT count(*) AS c FROM piped_rows WHERE id = $1', [id])).rows[0].c);
    /** One transaction as Kysely sends it: begin, the statements (the last one commitAfter), commit; its round trips. */
    const transaction = async (ids: number[], last = true): Promise<number> => {
      const before = roundTrips;
      await client.query('begin');
      for (const [i, id] of ids.entries()) {
        const q = CompiledQuery.raw(insertText, [id]);
        if (last && i === ids.length - 1) commitAfter(q);
        await client.query(q.sql, q.parameters as unknown[]);
      }
      await client.query('commit');
      return roundTrips - before;
    };

    it('the first transaction prepares them (one round trip each); later ones send them with the statements', async () => {
      expect(await transaction([101, 102])).toBe(4); // BEGIN, statement, statement, COMMIT
      expect(await transaction([103, 104])).toBe(2); // BEGIN + statement, statement + COMMIT
      expect(await transaction([105])).toBe(1); // BEGIN + statement + COMMIT
      expect(await transaction([106, 107], false)).toBe(3); // BEGIN + statement, statement, COMMIT (no statement marked last)
      for (const id of [101, 102, 103, 104, 105, 106]) expect(await seen(id)).toBe(1);
      const texts = (await client.query(`SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'tx_%' ORDER BY name`)).rows;
      expect(texts).toEqual([{ name: 'tx_begin', statement: 'BEGIN' }, { name: 'tx_commit', statement: 'COMMIT' }]);
    });

    it('a first statement failing with BEGIN in its write leaves the transaction open for its ROLLBACK; nothing stays', async () => {
      await transaction([110]);
      await client.query('begin');
      await expect(client.query('INSERT INTO piped_rows (id) VALUES (10 / $1::int)', [0])).rejects.toThrow(/division by zero/);
      await client.query('rollback');
      // A statement that does not parse, sent with BEGIN: not recorded as prepared, so it is parsed again next time.
      await client.query('begin');
      await expect(client.query('INSERT INTO piped_nowhere (id) VALUES ($1)', [1])).rejects.toThrow(/piped_nowhere/);
      await client.query('rollback');
      await client.query('begin');
      await expect(client.query('INSERT INTO piped_nowhere (id) VALUES ($1)', [1])).rejects.toThrow(/piped_nowhere/);
      await client.query('rollback');
      expect(await transaction([111])).toBe(1);
      expect(await seen(111)).toBe(1);
    });

    it('a last statement failing with COMMIT in its write: the COMMIT is skipped, the ROLLBACK ends the transaction, nothing stays', async () => {
      await client.query('begin');
      await client.query(insertText, [120]);
      const failing = commitAfter(CompiledQuery.raw('INSERT INTO piped_rows (id) VALUES (10 / $1::int)', [0]));
      await expect(client.query(failing.sql, failing.parameters as unknown[])).rejects.toThrow(/division by zero/);
      expect((await client.query('rollback')).command).toBe('ROLLBACK');
      expect(await seen(120)).toBe(0);
      expect(await transaction([121])).toBe(1);
      expect(await seen(121)).toBe(1);
    });

    it('a COMMIT that fails in the statement\'s write is that statement\'s error, and the transaction\'s commit fails too', async () => {
      await client.query('begin');
      await client.query(insertText, [130]);
      const duplicate = commitAfter(CompiledQuery.raw(insertText, [111])); // refused at COMMIT (deferred unique)
      await expect(client.query(duplicate.sql, duplicate.parameters as unknown[])).rejects.toThrow(/piped_rows_once/);
      await expect(client.query('commit')).rejects.toThrow(/piped_rows_once/);
      expect(await seen(130)).toBe(0);
      expect(await seen(111)).toBe(1);
      expect(await transaction([131])).toBe(1);
    });
  });

  it('an urgent statement\'s caller continues before the callers of ordinary results that arrived with it', async () => {
    // Two connections wait on a shared lock a third holds; both are granted at its release, and the
    // event loop is kept busy until both answers are in, so they are read in the same turn.
    const connect = () => new PreparingClient({ connectionString: pgdb.url });
    const [holder, a, b] = [connect(), connect(), connect()];
    for (const c of [holder, a, b]) await c.connect();
    try {
      const firsts: string[] = [];
      for (let round = 0; round < 10; round++) {
        await holder.query('BEGIN');
        await holder.query('SELECT pg_advisory_xact_lock(4242)');
        const order: string[] = [];
        // The urgent one is sent second, so its answer is not the first one read by chance.
        const ordinary = b.query('SELECT pg_advisory_xact_lock_shared(4242), $1::int AS v', [round]).then(() => { order.push('ordinary'); });
        const urgentQuery = CompiledQuery.raw('SELECT pg_advisory_xact_lock_shared(4242), $1::int AS v', [round]);
        urgent(urgentQuery);
        expect(await someoneWaitsOnAdvisoryLock(handle.db, 1)).toBe(true);
        const urgentOne = a.query(urgentQuery.sql, urgentQuery.parameters as unknown[]).then(() => { order.push('urgent'); });
        expect(await someoneWaitsOnAdvisoryLock(handle.db, 2)).toBe(true);
        // COMMIT is written to the socket at once; the loop is blocked before any answer is read.
        const released = holder.query('COMMIT');
        const until = Date.now() + 60;
        while (Date.now() < until) { /* the COMMIT and both answers arrive meanwhile */ }
        await Promise.all([released, ordinary, urgentOne]);
        firsts.push(order[0]!);
      }
      expect(firsts).toEqual(Array(10).fill('urgent'));
    } finally {
      for (const c of [holder, a, b]) await c.end();
    }
  });
});
