// The benchmark's standard customer, inserted with set-based SQL (fast), with the same rows and
// values the API would create: the customer with every field, its collections, settled
// transactions linked to invoices, active licenses, and the activity entries the API appends.
import crypto from 'node:crypto';
import { deriveSecrets } from '../src/secrets.ts';
import { customerRef } from '../src/erasure/pseudonym.ts';
import pg from 'pg';
import { MASTER_KEY, migrateDatabase } from './lib.ts';

/** Runs one SQL statement (pg.Client.query or PGlite.query both fit). */
export type Exec = (sqlText: string) => Promise<{ rows: any[] }>;

export const STANDARD = {
  addresses: 2, paymentMethods: 3, subscriptions: 2, memberships: 1, socialIdentities: 2,
  invoices: 5, orders: 5, transactions: 10, licenses: 3, activity: 50,
} as const;

const secrets = deriveSecrets(Buffer.from(MASTER_KEY, 'base64'));

/**
 * The feed: customer n → (id, pseudonymous ref the server will write). Load drivers and pgbench
 * pick their customers from it by number.
 */
export async function ensureFeed(exec: Exec): Promise<void> {
  await exec(`CREATE TABLE IF NOT EXISTS bench_feed (n integer PRIMARY KEY, id uuid NOT NULL UNIQUE, ref text NOT NULL)`);
}

export async function insertFeed(exec: Exec, first: number, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let start = first; start < first + count; start += 5000) {
    const values: string[] = [];
    for (let n = start; n < Math.min(first + count, start + 5000); n++) {
      const id = crypto.randomUUID();
      ids.push(id);
      values.push(`(${n}, '${id}', '${customerRef(secrets.pseudonymKey, id)}')`);
    }
    await exec(`INSERT INTO bench_feed (n, id, ref) VALUES ${values.join(',')}`);
  }
  return ids;
}

/** Three applications the customers hold licenses for. */
export async function insertApplications(exec: Exec, count = 3, webhookUrl: string | null = null): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const secret = `whsec_${crypto.randomBytes(24).toString('base64')}`;
    const r = await exec(`INSERT INTO applications (name, webhook_url, webhook_secret, created_at, updated_at)
      VALUES ('bench-app-${i}', ${webhookUrl ? `'${webhookUrl}'` : 'NULL'}, '${secret}', now(), now()) RETURNING id`);
    ids.push(String(r.rows[0].id));
  }
  return ids;
}

/**
 * Inserts the customers of feed numbers [lo, hi] with the standard fixture; `activity` and
 * `transactions` can be raised for the large customer. Each record insert writes its
 * `<entity>.created` activity entry in the same statement, as the API does in one transaction.
 * Foreign-key triggers are off for the load (session_replication_role = replica): the rows are
 * consistent by construction, and checking them row by row would dominate the bench's set-up.
 */
export async function insertCustomers(exec: Exec, lo: number, hi: number, applicationIds: string[],
  options: { activity?: number; transactions?: number; softDeleted?: boolean } = {}): Promise<void> {
  // softDeleted: the state a DELETE leaves with automatic personal data deletion off (records
  // soft deleted, subscriptions and licenses cancelled, transactions unlinked to their pseudonym,
  // the customer.deleted entry, the receipt), written directly instead of inserted then updated.
  const gone = options.softDeleted === true;
  const del = gone ? `now() - interval '1 day'` : 'NULL';
  const perInvoice = Math.ceil((options.transactions ?? STANDARD.transactions) / STANDARD.invoices);
  const txCount = perInvoice * STANDARD.invoices;
  const activity = options.activity ?? STANDARD.activity;
  const f = `FROM bench_feed f`;
  const range = `f.n BETWEEN ${lo} AND ${hi}`;
  const t0 = `(now() - interval '30 days')`;
  const at = (offset: string) => `${t0} + (${offset}) * interval '1 second'`;
  const series = (count: number) => `CROSS JOIN generate_series(1, ${count}) g`;
  /** The record insert and its activity entries, in one statement. */
  const withActivity = (entity: string, insert: string) => exec(`WITH ins AS (${insert} RETURNING customer_id, id, created_at)
    INSERT INTO activity (customer_id, type, record_id, details, created_at)
    SELECT customer_id, '${entity}.created', id, '{}'::jsonb, created_at FROM ins`);

  await exec(`SET session_replication_role = replica`);
  try {
    await exec(`INSERT INTO customers (id, salutation, first_name, last_name, display_name, email, organization, tin,
        last_login_success_ip, last_login_failure_ip, sdk_register_ip, metadata, created_at, updated_at, deleted_at)
      SELECT f.id, 'Dr.', 'Ada' || f.n, 'Lovelace' || f.n, 'Ada L ' || f.n, 'ada.' || f.n || '@example.com',
        'Analytical ' || f.n, 'DE' || (100000000 + f.n), '203.0.113.7', '198.51.100.23', '2001:db8::1',
        jsonb_build_object('favouriteColour', 'blue-' || f.n, 'tier', 'gold'), ${at('0')}, ${at('100')}, ${del}
      ${f} WHERE ${range}`);
    await withActivity('address', `INSERT INTO addresses (customer_id, salutation, first_name, last_name, title, company, department,
        line1, line2, city, postal_code, country, phone, created_at, updated_at, deleted_at)
      SELECT f.id, 'Ms', 'F' || f.n, 'L' || f.n, 'Prof', 'Co ' || f.n, 'Dep ' || g, g || ' Street ' || f.n, 'Flat ' || g,
        'Berlin', '10115', 'DE', '+49 30 ' || (1000000 + f.n), ${at('1 + g')}, ${at('1 + g')}, ${del}
      ${f} ${series(STANDARD.addresses)} WHERE ${range}`);
    await withActivity('payment_method', `INSERT INTO payment_methods (customer_id, brand, card_id, last4, exp_month, exp_year, token,
        created_at, updated_at, deleted_at)
      SELECT f.id, 'visa', 'card_' || f.n || '_' || g, lpad(((f.n * 7 + g) % 10000)::text, 4, '0'), 1 + g, 2030,
        'tok_' || md5(f.id::text || g), ${at('3 + g')}, ${at('3 + g')}, ${del}
      ${f} ${series(STANDARD.paymentMethods)} WHERE ${range}`);
    await withActivity('subscription', `INSERT INTO subscriptions (customer_id, plan, status, gift_recipient_email, gift_recipient_first_name,
        gift_recipient_last_name, cancelled_at, created_at, updated_at, deleted_at)
      SELECT f.id, 'pro-' || g, ${gone ? `'cancelled'` : `'active'`}, 'gift.' || f.n || '.' || g || '@example.org', 'G' || f.n, 'R' || f.n,
        ${del}, ${at('6 + g')}, ${at('6 + g')}, ${del}
      ${f} ${series(STANDARD.subscriptions)} WHERE ${range}`);
    await withActivity('membership', `INSERT INTO memberships (customer_id, name, role, status, created_at, updated_at, deleted_at)
      SELECT f.id, 'team', 'admin', 'active', ${at('9')}, ${at('9')}, ${del} ${f} WHERE ${range}`);
    await withActivity('social_identity', `INSERT INTO social_identities (customer_id, provider, external_id, created_at, updated_at, deleted_at)
      SELECT f.id, (ARRAY['github', 'google'])[g], 'ext-' || f.n || '-' || g, ${at('9 + g')}, ${at('9 + g')}, ${del}
      ${f} ${series(STANDARD.socialIdentities)} WHERE ${range}`);
    await withActivity('order', `INSERT INTO orders (customer_id, number, amount_minor, currency, created_at, updated_at, deleted_at)
      SELECT f.id, 'ORD-' || f.n || '-' || g, 1999, 'EUR', ${at('17 + g')}, ${at('17 + g')}, ${del}
      ${f} ${series(STANDARD.orders)} WHERE ${range}`);
    const apps = applicationIds.map((a) => `'${a}'::uuid`).join(',');
    if (applicationIds.length > 0) {
      await withActivity('license', `INSERT INTO licenses (customer_id, application_id, status, cancelled_at, created_at, updated_at, deleted_at)
        SELECT f.id, (ARRAY[${apps}])[1 + (g - 1) % ${applicationIds.length}], ${gone ? `'cancelled'` : `'active'`}, ${del},
          ${at('40 + g')}, ${at('40 + g')}, ${del}
        ${f} ${series(STANDARD.licenses)} WHERE ${range}`);
    }
    // Invoices, then settled transactions spread evenly over them (unlinked to the pseudonym
    // when soft deleted); ids generated up front so the activity entries can name them.
    await exec(`WITH inv AS MATERIALIZED (
        SELECT gen_random_uuid() AS id, f.id AS customer_id, f.ref, f.n, g, ${at('12 + g')} AS created_at
        ${f} ${series(STANDARD.invoices)} WHERE ${range}),
      tx AS MATERIALIZED (
        SELECT gen_random_uuid() AS id, inv.customer_id, inv.ref, inv.id AS invoice_id, ${at('23 + inv.g * 1000 + h')} AS created_at
        FROM inv CROSS JOIN generate_series(1, ${perInvoice}) h),
      i1 AS (INSERT INTO invoices (id, customer_id, number, amount_minor, currency, status, created_at, updated_at, deleted_at)
        SELECT id, customer_id, 'INV-' || n || '-' || g, 1999, 'EUR', 'paid', created_at, created_at, ${del} FROM inv),
      i2 AS (INSERT INTO transactions (id, customer_id, customer_ref, amount_minor, currency, status, invoice_id, created_at, updated_at)
        SELECT id, ${gone ? 'NULL, ref' : 'customer_id, NULL'}, 1999, 'EUR', 'succeeded', invoice_id, created_at, created_at FROM tx)
      INSERT INTO activity (customer_id, type, record_id, details, created_at)
      SELECT customer_id, 'invoice.created', id, '{}'::jsonb, created_at FROM inv
      UNION ALL SELECT customer_id, 'transaction.created', id, '{}'::jsonb, created_at FROM tx`);
    // customer.created (identifying details), then customer.updated entries up to `activity`.
    const perCustomerRecords = STANDARD.addresses + STANDARD.paymentMethods + STANDARD.subscriptions + STANDARD.memberships
      + STANDARD.socialIdentities + STANDARD.invoices + STANDARD.orders + txCount + (applicationIds.length > 0 ? STANDARD.licenses : 0);
    const updates = Math.max(0, activity - 1 - perCustomerRecords);
    await exec(`INSERT INTO activity (customer_id, type, details, created_at)
      SELECT f.id, CASE WHEN g = 0 THEN 'customer.created' ELSE 'customer.updated' END,
        jsonb_build_object('email', 'ada.' || f.n || '@example.com', 'displayName', 'Ada L ' || f.n)
          || CASE WHEN g = 0 THEN '{}'::jsonb ELSE jsonb_build_object('fields', jsonb_build_array('metadata')) END,
        ${at('60 + g')}
      FROM bench_feed f CROSS JOIN generate_series(0, ${updates}) g WHERE ${range}`);
    if (gone) {
      const counts = `jsonb_build_object('customer', 1, 'addresses', ${STANDARD.addresses}, 'payment-methods', ${STANDARD.paymentMethods},
        'subscriptions', ${STANDARD.subscriptions}, 'memberships', ${STANDARD.memberships}, 'social-identities', ${STANDARD.socialIdentities},
        'invoices', ${STANDARD.invoices}, 'orders', ${STANDARD.orders}, 'licenses', ${applicationIds.length > 0 ? STANDARD.licenses : 0})`;
      await exec(`INSERT INTO activity (customer_id, type, details, created_at)
        SELECT f.id, 'customer.deleted', jsonb_build_object('email', 'ada.' || f.n || '@example.com', 'displayName', 'Ada L ' || f.n,
          'counts', ${counts}), ${del}
        ${f} WHERE ${range}`);
      // The receipt of a deletion that ran with the setting off; the audit chain is not rebuilt here.
      await exec(`INSERT INTO deletions (customer_id, deleted_at, actor_key_id, counts, preserved_transactions, applications_notified,
          audit_event_id, audit_hash, redaction)
        SELECT f.id, ${del}, NULL, ${counts} || jsonb_build_object('cancelledSubscriptions', ${STANDARD.subscriptions},
          'cancelledLicenses', ${applicationIds.length > 0 ? STANDARD.licenses : 0}), ${txCount},
          to_jsonb(ARRAY[${apps || 'NULL'}]::text[]), gen_random_uuid(), md5(f.id::text) || md5(f.ref),
          '{"ran": false, "via": null, "redactedAt": null, "policyVersion": null, "policy": null, "reason": "automatic_personal_data_deletion_off"}'::jsonb
        ${f} WHERE ${range}`);
    }
  } finally {
    await exec(`SET session_replication_role = DEFAULT`);
  }
}

const FIXTURE_TABLES = ['customers', 'addresses', 'payment_methods', 'subscriptions', 'memberships', 'social_identities',
  'invoices', 'orders', 'transactions', 'licenses', 'activity', 'deletions'];

/**
 * Bulk load: drops the fixture tables' secondary indexes (not those backing a constraint), runs
 * `load`, then builds them again (one sorted build is much faster than millions of inserts).
 */
export async function withIndexesDeferred(exec: Exec, load: () => Promise<void>): Promise<void> {
  const r = await exec(`SELECT i.indexname, i.indexdef FROM pg_indexes i
    WHERE i.schemaname = current_schema() AND i.tablename IN (${FIXTURE_TABLES.map((t) => `'${t}'`).join(', ')})
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)`);
  const indexes = r.rows as Array<{ indexname: string; indexdef: string }>;
  for (const i of indexes) await exec(`DROP INDEX ${i.indexname}`);
  try {
    await load();
  } finally {
    for (const i of indexes) await exec(i.indexdef);
  }
}

/**
 * Gives fixture customers their data keys, as every customer has once crypto-shredding has
 * landed (made at creation through the API, or by the data migration for older ones): the
 * server's own code (customer-keys keyFor) wraps each under the current epoch of the keyring
 * beside `dataDir`, the directory the server is then started with. The values stay in clear
 * (inserted by SQL), so a DELETE decrypts nothing; it destroys the key, as with every customer.
 */
export async function giveDataKeys(target: { databaseUrl?: string; dataDir: string }, ids: string[]): Promise<void> {
  const pino = (await import('pino')).default;
  const { loadConfig } = await import('../src/config.ts');
  const { startRuntime } = await import('../src/runtime.ts');
  const { ADMIN_KEY } = await import('./lib.ts');
  const config = loadConfig({
    ...(target.databaseUrl ? { DATABASE_URL: target.databaseUrl } : {}), LETHE_DATA_DIR: target.dataDir,
    LETHE_ADMIN_KEY: ADMIN_KEY, LETHE_MASTER_KEY: MASTER_KEY, LOG_LEVEL: 'silent', LETHE_SCHEDULER: 'false', LETHE_DISPATCHER: 'false',
  });
  const rt = await startRuntime(config, { log: pino({ level: 'silent' }) });
  try {
    const at = new Date();
    for (let i = 0; i < ids.length; i += 200) {
      await rt.ctx.db.transaction().execute(async (trx) => {
        for (const id of ids.slice(i, i + 200)) await rt.ctx.crypto.keys.keyFor(trx, id, at);
      });
    }
  } finally {
    await rt.close();
  }
}

/**
 * A migrated bench database holding `count` standard customers (three applications), vacuumed,
 * with their data keys in the keyring beside `dataDir`: the setup of the scripts that run
 * DELETEs outside `npm run bench` (bench/statements.ts, bench/cpu-attribution.ts). Returns their ids.
 */
export async function standardCustomersDatabase(url: string, dataDir: string, count: number): Promise<string[]> {
  await migrateDatabase({ databaseUrl: url });
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  let ids: string[];
  try {
    const exec: Exec = async (text) => c.query(text);
    await ensureFeed(exec);
    const apps = await insertApplications(exec);
    ids = await insertFeed(exec, 1, count);
    await withIndexesDeferred(exec, async () => { await insertCustomers(exec, 1, count, apps); });
    await exec('VACUUM ANALYZE');
  } finally {
    await c.end();
  }
  await giveDataKeys({ databaseUrl: url, dataDir }, ids);
  return ids;
}
