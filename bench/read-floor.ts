// read_floor_per_s: the floor of GET /v1/customers/{id}. A minimal Fastify server (its own
// process, like the real server, so it does not share the load driver's event loop) with one
// route, GET /customers/:id, that sends the statements the real server sent for that request —
// recorded from PostgreSQL's statement log by bench/read.ts, so they cannot drift from the
// product — and does only the unavoidable work around them: the API key's hashes (the same
// functions as src/auth/api-keys.ts), 401/404 when a lookup finds nothing, unwrapping the
// customer's data key with its epoch key (the keyring the server wrote, opened as src/runtime.ts
// does), decrypting the sealed fields with src/crypto/field-crypto.ts, the same view
// (toCustomerView) and JSON.stringify. No auth framework, rate limits, idempotency, logging,
// schema validation or serializer; a pg.Pool of the server's size (20).
//
//   node bench/read-floor.ts <config.json>    (bench/read.ts writes the file and starts it)
import fs from 'node:fs';
import Fastify from 'fastify';
import pg from 'pg';
import { hashKey, legacyHashKey } from '../src/auth/api-keys.ts';
import { openBytes } from '../src/crypto/envelope.ts';
import { createFieldCrypto } from '../src/crypto/field-crypto.ts';
import { openKeyring } from '../src/crypto/keyring.ts';
import { toCustomerView } from '../src/customers/customers.service.ts';
import { toCamel } from '../src/erasure/data-map.ts';
import type { Customer } from '../src/db/schema.ts';
import { deriveSecrets } from '../src/secrets.ts';

/** Where a recorded parameter's value comes from in another request. */
export type ParamRole = { role: 'customer' } | { role: 'keyHash' } | { role: 'legacyKeyHash' } | { role: 'const'; value: string | null };
export interface RecordedStatement { text: string; params: ParamRole[] }
export type StatementKind = 'apiKey' | 'customer' | 'dataKey';

export interface FloorConfig {
  databaseUrl: string; port: number; keyringDir: string; masterKey: string;
  statements: RecordedStatement[];
}

/** What each recorded statement is for; the floor refuses statements it does not know. */
export function kindOf(text: string): StatementKind {
  if (/\bfrom "?api_keys\b/i.test(text)) return 'apiKey';
  if (/\bfrom "?customers\b/i.test(text)) return 'customer';
  if (/\bfrom "?customer_keys\b/i.test(text)) return 'dataKey';
  throw new Error(`the read floor does not know this statement of the server's GET: ${text.slice(0, 200)}`);
}

const snakeToCamel = (row: Record<string, unknown>) => {
  const out: Record<string, unknown> = {};
  for (const k in row) out[toCamel(k)] = row[k];
  return out;
};

async function main() {
  const config = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8')) as FloorConfig;
  const secrets = deriveSecrets(Buffer.from(config.masterKey, 'base64'));
  const keyring = openKeyring(config.keyringDir, secrets.keyringKey);
  // decryptRow needs no key store: the data key is unwrapped here from the recorded lookup's row.
  const fc = createFieldCrypto(undefined as never, secrets.blindIndexKey);
  const statements = config.statements.map((s) => ({ ...s, kind: kindOf(s.text) }));
  const kinds = statements.map((s) => s.kind).sort().join(',');
  if (kinds !== 'apiKey,customer,dataKey') throw new Error(`unexpected statements for one GET: ${kinds}`);
  const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 20 });
  pool.on('error', () => {});

  const app = Fastify({ logger: false });
  app.get<{ Params: { id: string } }>('/customers/:id', async (request, reply) => {
    const id = request.params.id;
    const header = String(request.headers.authorization ?? '');
    const key = header.startsWith('Bearer ') ? header.slice(7) : '';
    const keyed = hashKey(key, secrets.apiKeyHashKey);
    const legacy = legacyHashKey(key);
    let customer: Record<string, unknown> | undefined;
    let dek: Buffer | undefined;
    for (const s of statements) {
      const params = s.params.map((p) => (p.role === 'customer' ? id : p.role === 'keyHash' ? keyed
        : p.role === 'legacyKeyHash' ? legacy : p.value));
      const { rows } = await pool.query(s.text, params);
      if (s.kind === 'apiKey') {
        if (rows.length === 0) return reply.code(401).send({ title: 'Unknown or revoked API key' });
      } else if (s.kind === 'customer') {
        if (rows.length === 0) return reply.code(404).send({ title: 'Customer not found' });
        customer = snakeToCamel(rows[0] as Record<string, unknown>);
      } else {
        const r = rows[0] as { customer_id: string; epoch_id: string; wrapped: Buffer } | undefined;
        if (r) dek = openBytes(keyring.epochKey(r.epoch_id), r.wrapped, `lethe-customer-key:${r.customer_id}:${r.epoch_id}`);
      }
    }
    const view = toCustomerView(fc.decryptRow('customers', customer!, id, dek) as unknown as Customer);
    return reply.header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(view));
  });
  await app.listen({ port: config.port, host: '127.0.0.1' });
  process.stdout.write('ready\n');
  const stop = () => { void app.close().then(() => pool.end()).then(() => process.exit(0)); };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: Error) => { process.stderr.write(`read-floor: ${error.stack ?? error.message}\n`); process.exit(1); });
}
