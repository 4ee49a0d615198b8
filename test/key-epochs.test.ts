// Crypto-shredding across backups: a backup taken before a deletion restores within retention
// (the deleted customer stays deleted through erasure replay); after rotation, re-wrapping,
// retention and epoch destruction, nothing personal in that old backup can be decrypted with the
// master key and the current keyring, while the live database reads every living customer.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabaseBackup, readBackupLines } from '../src/backups/database-backup.ts';
import { restoreDatabaseBackup } from '../src/backups/restore.ts';
import { DAY_MS } from '../src/clock.ts';
import { openBytes } from '../src/crypto/envelope.ts';
import { KeyUnavailableError } from '../src/crypto/keyring.ts';
import { encryptedColumns, toCamel } from '../src/erasure/data-map.ts';
import { canaryCustomer } from './helpers/canary-customer.ts';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';

let env: TestEnv;
let api: Client;
const offsite = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-offsite-'));

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
});
afterAll(async () => {
  await env?.close();
  fs.rmSync(offsite, { recursive: true, force: true });
});

/** The rows of a backup file, by table (decrypted with the master-derived backup key: the file itself is readable). */
async function backupRows(file: string): Promise<Record<string, Array<Record<string, unknown>>>> {
  const out: Record<string, Array<Record<string, unknown>>> = {};
  let table = '';
  for await (const line of readBackupLines(file, env.ctx.secrets.backupKey)) {
    if (!line) continue;
    if (line.startsWith('[')) { const [k, v] = JSON.parse(line) as [string, unknown]; if (k === 'table') table = String(v); continue; }
    (out[table] ??= []).push(JSON.parse(line) as Record<string, unknown>);
  }
  return out;
}

/** Tries to recover a customer's data key from a backup with the current keyring (and the master key it was sealed with). */
function unwrapFromBackup(row: Record<string, unknown>): Buffer {
  const wrapped = Buffer.from(String(row.wrapped).replace(/^\\x/, ''), 'hex');
  const epochId = String(row.epoch_id);
  const epochKey = env.ctx.crypto.keys.keyring.epochKey(epochId); // throws once the epoch is destroyed
  return openBytes(epochKey, wrapped, `lethe-customer-key:${String(row.customer_id)}:${epochId}`);
}

/** Decrypts every encrypted value of a customer in the backup's rows with the given data key; returns the clear values. */
function decryptCustomerRows(rows: Record<string, Array<Record<string, unknown>>>, customerId: string, dek: Buffer): string[] {
  const values: string[] = [];
  for (const table of ['customers', 'addresses', 'payment_methods', 'subscriptions', 'social_identities']) {
    for (const r of rows[table] ?? []) {
      if ((table === 'customers' ? r.id : r.customer_id) !== customerId) continue;
      const camel = Object.fromEntries(Object.entries(r).map(([k, v]) => [toCamel(k), v]));
      const plain = env.ctx.crypto.decryptRow(table, camel, String(r.id), dek);
      for (const [col] of encryptedColumns(table)) values.push(JSON.stringify(plain[toCamel(col)]));
    }
  }
  return values;
}

describe('key epochs, rotation and destruction against an old backup', () => {
  it('restores within retention; after rotation + re-wrap + retention + destruction the old backup is unreadable, the live database is not', async () => {
    const prefix = `cnry${crypto.randomBytes(6).toString('hex')}`;
    const gone = await canaryCustomer(api, `${prefix}g`);
    const kept = await canaryCustomer(api, `${prefix}l`);

    const backup = await createDatabaseBackup(env.ctx);
    const copy = path.join(offsite, path.basename(backup.path));
    fs.copyFileSync(backup.path, copy); // an off-site copy: retention pruning does not reach it
    const rowsThen = await backupRows(copy);
    // The backup holds no canary in clear, even decrypted with the backup key.
    const text = JSON.stringify(rowsThen);
    expect(text).not.toContain(`${prefix}gx`);
    expect(text).not.toContain(`${prefix}lx`);

    expect((await api.del(`/v1/customers/${gone.id}`)).status).toBe(204);
    const receipt = (await api.get(`/v1/deletions/${gone.id}`)).body;
    expect(receipt.keyDestroyedAt).toBe(env.clock.now().toISOString());

    // Within retention, the master key and the keyring still open the backup's copy of the key.
    const goneKeyRow = rowsThen.customer_keys!.find((r) => r.customer_id === gone.id)!;
    const goneDek = unwrapFromBackup(goneKeyRow);
    expect(decryptCustomerRows(rowsThen, gone.id, goneDek).join()).toContain(gone.email);

    // A restore within retention: the deleted customer stays deleted (replay), the living one is intact.
    env.clock.advance(2 * DAY_MS);
    const restored = await restoreDatabaseBackup(env.ctx, env.services.registry, copy);
    expect(restored.replay.deletionsReplayed).toBe(1);
    expect((await api.get(`/v1/customers/${gone.id}`)).status).toBe(404);
    expect((await api.get(`/v1/customers?email=${encodeURIComponent(gone.email)}`)).body.data).toEqual([]);
    const living = await api.get(`/v1/customers/${kept.id}`);
    expect(living.body).toMatchObject({ email: kept.email, tin: kept.body.tin, metadata: kept.body.metadata });
    expect(await env.ctx.db.selectFrom('customerKeys').select('customerId').where('customerId', '=', gone.id).execute()).toEqual([]);

    // An epoch key file the restored database does not know (an epoch started after the backup, before the
    // restore) must not outlive retention either: it is adopted as retired and destroyed like the others.
    const orphan = crypto.randomUUID();
    env.ctx.crypto.keys.keyring.createEpochKey(orphan);
    const hoursAgo = new Date(Date.now() - 2 * 3_600_000);
    fs.utimesSync(path.join(env.config.keyringDir, `epoch-${orphan}.key`), hoursAgo, hoursAgo);

    // Time passes: a new epoch, every key re-wrapped, the old epoch out of use, then destroyed after retention.
    const firstEpoch = String(goneKeyRow.epoch_id);
    env.clock.advance(8 * DAY_MS);
    const r1 = (await api.post('/v1/jobs/retention/run')).body.result.keys;
    expect(r1).toMatchObject({ epochStarted: 1, epochsDestroyed: 0 });
    expect(r1.rewrapped).toBeGreaterThanOrEqual(1);
    expect((await env.ctx.db.selectFrom('customerKeys').select('epochId').where('customerId', '=', kept.id).executeTakeFirstOrThrow()).epochId)
      .not.toBe(firstEpoch);
    env.clock.advance(31 * DAY_MS);
    const r2 = (await api.post('/v1/jobs/retention/run')).body.result.keys;
    expect(r2.epochsDestroyed).toBeGreaterThanOrEqual(1);
    const epoch = await env.ctx.db.selectFrom('keyEpochs').selectAll().where('id', '=', firstEpoch).executeTakeFirstOrThrow();
    expect(epoch.destroyedAt).not.toBeNull();
    expect(env.ctx.crypto.keys.keyring.list()).not.toContain(firstEpoch);
    expect(env.ctx.crypto.keys.keyring.list()).not.toContain(orphan);
    const adopted = await env.ctx.db.selectFrom('keyEpochs').selectAll().where('id', '=', orphan).executeTakeFirstOrThrow();
    expect(adopted.destroyedAt).not.toBeNull();
    expect(fs.readdirSync(env.config.keyringDir).some((n) => n.includes(firstEpoch))).toBe(false);
    const audit = await env.ctx.db.selectFrom('auditEvents').select(['type', 'subjectId']).where('type', '=', 'key_epoch.destroyed').execute();
    expect(audit.map((a) => a.subjectId)).toContain(firstEpoch);

    // The old backup: no customer key in it can be unwrapped any more, so no personal field can be decrypted.
    for (const row of rowsThen.customer_keys!) {
      expect(() => unwrapFromBackup(row), `key of ${String(row.customer_id)}`).toThrow(KeyUnavailableError);
    }
    // (Even a data key obtained otherwise is the only way in: the ciphertexts do not open under any other key.)
    expect(() => decryptCustomerRows(rowsThen, gone.id, crypto.randomBytes(32))).toThrow();

    // The live database, re-wrapped, still reads every living customer, with its records, photo and search.
    const again = await api.get(`/v1/customers/${kept.id}`);
    expect(again.body).toMatchObject({ email: kept.email, firstName: kept.body.firstName, lastLoginSuccessIp: kept.ips[0] });
    expect((await api.get(`/v1/customers/${kept.id}/addresses`)).body.data[0]).toMatchObject(kept.address);
    const photo = await env.app.inject({ method: 'GET', url: `/v1/customers/${kept.id}/profile-photo`, headers: { authorization: `Bearer ${env.operatorKey}` } });
    expect(photo.rawPayload.equals(kept.photo)).toBe(true);
    expect((await api.get(`/v1/customers?email=${encodeURIComponent(kept.email)}`)).body.data.map((c: { id: string }) => c.id)).toEqual([kept.id]);

    // The deleted customer's receipt: its last wrapping epoch's destruction confirms "unreadable everywhere".
    const final = (await api.get(`/v1/deletions/${gone.id}`)).body;
    expect(final.unreadableEverywhereConfirmed).toBe(true);
    expect(final.unreadableEverywhereBy).toBe(new Date(epoch.destroyedAt!).toISOString());
  });

  it('/readyz answers 503 while the keyring is unreachable', async () => {
    const file = path.join(env.config.keyringDir, 'keyring.json');
    expect((await env.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    fs.renameSync(file, `${file}.away`);
    try {
      const r = await env.app.inject({ method: 'GET', url: '/readyz' });
      expect(r.statusCode).toBe(503);
      expect(r.body).toContain('Keyring');
      // Deletions are refused with 503 meanwhile, and nothing changes.
      const c = await api.post('/v1/customers', { email: `k${crypto.randomUUID()}@example.com` });
      const del = await api.del(`/v1/customers/${c.body.id}`);
      expect(del.status).toBe(503);
      expect((await api.get(`/v1/customers/${c.body.id}`)).status).toBe(200);
    } finally {
      fs.renameSync(`${file}.away`, file);
    }
    expect((await env.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });

  it('refuses to start with another keyring than the database\'s', async () => {
    const { createCustomerKeys } = await import('../src/crypto/customer-keys.ts');
    const { openKeyring } = await import('../src/crypto/keyring.ts');
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-other-keyring-'));
    try {
      // What startRuntime runs before serving, against this database, with an empty keyring elsewhere.
      await expect(createCustomerKeys(openKeyring(other, env.ctx.secrets.keyringKey)).checkKeyring(env.ctx.db))
        .rejects.toThrow(/not this database's keyring/);
      // The same keyring under another master key: its epoch keys do not open.
      const same = createCustomerKeys(openKeyring(env.config.keyringDir, crypto.randomBytes(32)));
      await expect(same.checkKeyring(env.ctx.db)).rejects.toThrow(/master key differs/);
      // The right keyring passes.
      await env.ctx.crypto.keys.checkKeyring(env.ctx.db);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});
