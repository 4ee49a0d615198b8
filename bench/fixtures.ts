// The benchmark's standard customer, inserted with set-based SQL (fast), with the same rows and
// values the API would create: the customer with every field, its collections, settled
// transactions linked to invoices, active licenses, and the activity entries the API appends.
import crypto from 'node:crypto';
import { deriveSecrets } from '../src/secrets.ts';
import { customerRef } from '../src/erasure/pseudonym.ts';
import { MASTER_KEY } from './lib.ts';

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
 * `transactions` can be raised for the large customer.
 */
export async function insertCustomers(exec: Exec, lo: number, hi: number, applicationIds: string[],
  options: { activity?: number; transactions?: number } = {}): Promise<void> {
  const txCount = options.transactions ?? STANDARD.transactions;
  const activity = options.activity ?? STANDARD.activity;
  const f = `FROM bench_feed f`;
  const range = `f.n BETWEEN ${lo} AND ${hi}`;
  const t0 = `(now() - interval '30 days')`;
  const at = (offset: string) => `${t0} + (${offset}) * interval '1 second'`;
  const series = (count: number) => `CROSS JOIN generate_series(1, ${count}) g`;

  await exec(`INSERT INTO customers (id, salutation, first_name, last_name, display_name, email, organization, tin,
      last_login_success_ip, last_login_failure_ip, sdk_register_ip, metadata, created_at, updated_at)
    SELECT f.id, 'Dr.', 'Ada' || f.n, 'Lovelace' || f.n, 'Ada L ' || f.n, 'ada.' || f.n || '@example.com',
      'Analytical ' || f.n, 'DE' || (100000000 + f.n), '203.0.113.7', '198.51.100.23', '2001:db8::1',
      jsonb_build_object('favouriteColour', 'blue-' || f.n, 'tier', 'gold'), ${at('0')}, ${at('100')}
    ${f} WHERE ${range}`);
  await exec(`INSERT INTO addresses (customer_id, salutation, first_name, last_name, title, company, department,
      line1, line2, city, postal_code, country, phone, created_at, updated_at)
    SELECT f.id, 'Ms', 'F' || f.n, 'L' || f.n, 'Prof', 'Co ' || f.n, 'Dep ' || g, g || ' Street ' || f.n, 'Flat ' || g,
      'Berlin', '10115', 'DE', '+49 30 ' || (1000000 + f.n), ${at('1 + g')}, ${at('1 + g')}
    ${f} ${series(STANDARD.addresses)} WHERE ${range}`);
  await exec(`INSERT INTO payment_methods (customer_id, brand, card_id, last4, exp_month, exp_year, token, created_at, updated_at)
    SELECT f.id, 'visa', 'card_' || f.n || '_' || g, lpad(((f.n * 7 + g) % 10000)::text, 4, '0'), 1 + g, 2030,
      'tok_' || md5(f.id::text || g), ${at('3 + g')}, ${at('3 + g')}
    ${f} ${series(STANDARD.paymentMethods)} WHERE ${range}`);
  await exec(`INSERT INTO subscriptions (customer_id, plan, status, gift_recipient_email, gift_recipient_first_name,
      gift_recipient_last_name, created_at, updated_at)
    SELECT f.id, 'pro-' || g, 'active', 'gift.' || f.n || '.' || g || '@example.org', 'G' || f.n, 'R' || f.n, ${at('6 + g')}, ${at('6 + g')}
    ${f} ${series(STANDARD.subscriptions)} WHERE ${range}`);
  await exec(`INSERT INTO memberships (customer_id, name, role, status, created_at, updated_at)
    SELECT f.id, 'team', 'admin', 'active', ${at('9')}, ${at('9')} ${f} WHERE ${range}`);
  await exec(`INSERT INTO social_identities (customer_id, provider, external_id, created_at, updated_at)
    SELECT f.id, (ARRAY['github', 'google'])[g], 'ext-' || f.n || '-' || g, ${at('9 + g')}, ${at('9 + g')}
    ${f} ${series(STANDARD.socialIdentities)} WHERE ${range}`);
  await exec(`INSERT INTO invoices (customer_id, number, amount_minor, currency, status, created_at, updated_at)
    SELECT f.id, 'INV-' || f.n || '-' || g, 1999, 'EUR', 'paid', ${at('12 + g')}, ${at('12 + g')}
    ${f} ${series(STANDARD.invoices)} WHERE ${range}`);
  await exec(`INSERT INTO orders (customer_id, number, amount_minor, currency, created_at, updated_at)
    SELECT f.id, 'ORD-' || f.n || '-' || g, 1999, 'EUR', ${at('17 + g')}, ${at('17 + g')}
    ${f} ${series(STANDARD.orders)} WHERE ${range}`);
  // Settled transactions, each linked to one of the customer's invoices (round robin).
  await exec(`INSERT INTO transactions (customer_id, amount_minor, currency, status, invoice_id, created_at, updated_at)
    SELECT f.id, 1999, 'EUR', 'succeeded', i.id, ${at('23 + g')}, ${at('23 + g')}
    ${f} ${series(txCount)}
    JOIN LATERAL (SELECT id FROM invoices WHERE customer_id = f.id ORDER BY created_at, id
                  OFFSET ((g - 1) % ${STANDARD.invoices}) LIMIT 1) i ON true
    WHERE ${range}`);
  const apps = applicationIds.map((a) => `'${a}'::uuid`).join(',');
  if (applicationIds.length > 0) {
    await exec(`INSERT INTO licenses (customer_id, application_id, status, created_at, updated_at)
      SELECT f.id, (ARRAY[${apps}])[1 + (g - 1) % ${applicationIds.length}], 'active', ${at('40 + g')}, ${at('40 + g')}
      ${f} ${series(STANDARD.licenses)} WHERE ${range}`);
  }
  // The activity log as the API writes it: customer.created (identifying details), one
  // <entity>.created per record (record id), the rest customer.updated entries.
  await exec(`INSERT INTO activity (customer_id, type, details, created_at)
    SELECT f.id, 'customer.created', jsonb_build_object('email', 'ada.' || f.n || '@example.com', 'displayName', 'Ada L ' || f.n), ${at('0')}
    ${f} WHERE ${range}`);
  const records: Array<[string, string]> = [
    ['addresses', 'address'], ['payment_methods', 'payment_method'], ['subscriptions', 'subscription'],
    ['memberships', 'membership'], ['social_identities', 'social_identity'], ['invoices', 'invoice'],
    ['orders', 'order'], ['transactions', 'transaction'], ['licenses', 'license'],
  ];
  await exec(`INSERT INTO activity (customer_id, type, record_id, details, created_at)
    SELECT r.customer_id, r.type, r.id, '{}'::jsonb, r.created_at FROM (
      ${records.map(([table, entity]) => `SELECT customer_id, '${entity}.created' AS type, id, created_at FROM ${table}`).join('\n      UNION ALL ')}
    ) r JOIN bench_feed f ON f.id = r.customer_id WHERE ${range}`);
  const perCustomerRecords = STANDARD.addresses + STANDARD.paymentMethods + STANDARD.subscriptions + STANDARD.memberships
    + STANDARD.socialIdentities + STANDARD.invoices + STANDARD.orders + txCount + (applicationIds.length > 0 ? STANDARD.licenses : 0);
  const updates = activity - 1 - perCustomerRecords;
  if (updates > 0) {
    await exec(`INSERT INTO activity (customer_id, type, details, created_at)
      SELECT f.id, 'customer.updated', jsonb_build_object('email', 'ada.' || f.n || '@example.com', 'displayName', 'Ada L ' || f.n,
        'fields', jsonb_build_array('metadata')), ${at('60 + g')}
      ${f} ${series(updates)} WHERE ${range}`);
  }
}
