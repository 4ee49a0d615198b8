// Migration 0010 (crypto-shredding) on a database written by release 1: the server serves it at
// once (clear values read as they are), the data migration encrypts every existing personal value,
// photo and stored response in resumable batches, re-seals the archives under the current epoch
// key, and removes the plaintext from the tables' files; everything keeps working.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { migrateBatch, migrationDone } from '../src/crypto/data-migration.ts';
import type { ReleaseFixture } from './helpers/release-fixture.ts';
import { useReleaseFixture } from './helpers/upgrade.ts';
import { client, type TestEnv } from './helpers/runtime.ts';

let fx: ReleaseFixture;
let env: TestEnv;
useReleaseFixture((f, e) => { fx = f; env = e; });

/** Columns (any table, any text/json/bytea column) holding the value in clear. */
async function columnsHolding(value: string): Promise<string[]> {
  const db = env.ctx.db.withoutPlugins();
  const cols = await sql<{ table_name: string; column_name: string; data_type: string }>`
    SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c
    JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
      AND c.data_type IN ('text', 'character varying', 'json', 'jsonb', 'bytea')`.execute(db);
  const hits: string[] = [];
  for (const c of cols.rows) {
    const cond = c.data_type === 'bytea'
      ? sql`position(convert_to(${value}, 'UTF8') in ${sql.ref(c.column_name)}) > 0`
      : sql`${sql.ref(c.column_name)}::text ILIKE ${`%${value}%`}`;
    const r = await sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql.table(c.table_name)} WHERE ${cond}`.execute(db);
    if (r.rows[0]!.n > 0) hits.push(`${c.table_name}.${c.column_name}`);
  }
  return hits;
}

/** The database's own files (heap, index, TOAST), not its WAL. */
async function tableFiles(): Promise<string[]> {
  const walk = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile()).map((d) => path.join(d.parentPath, d.name));
  if (!env.databaseUrl) return walk(path.join(fx.dataDir, 'pglite', 'base'));
  const r = await sql<{ d: string; f: string }>`SELECT current_setting('data_directory') AS d, pg_relation_filepath('customers') AS f`
    .execute(env.ctx.db.withoutPlugins());
  return walk(path.join(r.rows[0]!.d, path.dirname(r.rows[0]!.f)));
}

describe('migration 0010 on a release-1 database', () => {
  it('serves before, encrypts in resumable batches, re-seals archives, drops plaintext; everything keeps working', async () => {
    const m = fx.manifest;
    const api = client(env.app, m.operatorKey);
    const living = m.customers.living;
    // Before the data migration: clear values are served as they are; the e-mail is in clear in the table.
    expect(await migrationDone(env.ctx.db)).toBe(false);
    expect((await api.get(`/v1/customers/${living}`)).body.email).toBe(m.living.email);
    expect(await columnsHolding(m.living.email)).toContain('customers.email');
    // Release 1's photo files were imported into stored_files at start, still in clear (the check below can see it).
    const imported = await env.ctx.db.selectFrom('storedFiles').select('content').where('key', 'like', 'photos/%').execute();
    expect(imported.some((f) => crypto.createHash('sha256').update(f.content).digest('hex') === m.photoSha256)).toBe(true);
    await sql`CHECKPOINT`.execute(env.ctx.db);
    const holding = async () => (await tableFiles()).filter((f) => { try { return fs.readFileSync(f).includes(Buffer.from(m.living.email)); } catch { return false; } });
    expect((await holding()).length, 'the file scan sees the clear e-mail before the migration').toBeGreaterThan(0);

    // Batches of one customer: the cursor advances, a second call resumes after the first.
    const first = await migrateBatch(env.ctx, 1);
    expect(first).toMatchObject({ customers: 1, done: false });
    const cursor1 = (await env.ctx.db.selectFrom('cryptoState').select('migrationCursor').executeTakeFirstOrThrow()).migrationCursor;
    expect(cursor1).not.toBeNull();
    // Served while migrating: a write in between (encrypted at once) and reads of both kinds of rows.
    expect((await api.patch(`/v1/customers/${living}`, { organization: 'Mid-migration GmbH' })).status).toBe(200);
    let total = first.customers;
    let archives = 0;
    for (let i = 0; i < 20; i++) {
      const p = await migrateBatch(env.ctx, 1);
      total += p.customers;
      archives += p.archives;
      if (p.done) break;
    }
    expect(await migrationDone(env.ctx.db)).toBe(true);
    const customers = await env.ctx.db.selectFrom('customers').select('id').execute();
    expect(total).toBe(customers.length);
    // Running it again does nothing.
    expect(await migrateBatch(env.ctx)).toMatchObject({ customers: 0, done: true });

    // No personal value of the living customer is left in clear in any column.
    expect(await columnsHolding(m.living.email)).toEqual([]);
    expect(await columnsHolding('Mid-migration GmbH')).toEqual([]);
    const living1 = await api.get(`/v1/customers/${living}`);
    expect(living1.body.email).toBe(m.living.email);
    expect(living1.body.organization).toBe('Mid-migration GmbH');
    expect((await api.get(`/v1/customers?email=${encodeURIComponent(m.living.email)}`)).body.data.map((c: { id: string }) => c.id)).toEqual([living]);
    // "Drops plaintext": the tables' files were rewritten (VACUUM FULL): no heap or index file holds the
    // old clear value. (WAL written before the migration holds what it held: docs/encryption.md.)
    await sql`CHECKPOINT`.execute(env.ctx.db);
    const files = await tableFiles();
    expect(files.length).toBeGreaterThan(10);
    const left = await holding();
    // On a failure, which relation each file is (none: a rewritten relation's old file not yet unlinked).
    const names = env.databaseUrl ? await Promise.all(left.map(async (f) => (await sql<{ r: string | null }>`
      SELECT pg_filenode_relation(0, ${Number(path.basename(f).split(/[._]/)[0])}::oid)::text AS r`.execute(env.ctx.db.withoutPlugins())).rows[0]?.r ?? 'none')) : [];
    expect(left, `table files still holding the e-mail in clear (relations: ${names.join(', ')})`).toEqual([]);
    const key = await env.ctx.db.selectFrom('customerKeys').select('customerId').where('customerId', '=', living).execute();
    expect(key).toHaveLength(1);

    // The photo: imported from release 1's <data dir>/blobs into stored_files, served unchanged,
    // stored encrypted (the stored bytes differ from the image's); no stored photo is in clear.
    const photo = await env.app.inject({ method: 'GET', url: `/v1/customers/${living}/profile-photo`, headers: { authorization: `Bearer ${m.operatorKey}` } });
    expect(photo.statusCode).toBe(200);
    expect(crypto.createHash('sha256').update(photo.rawPayload).digest('hex')).toBe(m.photoSha256);
    const row = await env.ctx.db.selectFrom('customers').select('profilePhotoKey').where('id', '=', living).executeTakeFirstOrThrow();
    const file = (await env.ctx.db.selectFrom('storedFiles').select('content').where('key', '=', row.profilePhotoKey!).executeTakeFirstOrThrow()).content;
    expect(file[0]).toBe(0x01); // an envelope
    expect(crypto.createHash('sha256').update(file).digest('hex')).not.toBe(m.photoSha256);
    const storedPhotos = await env.ctx.db.selectFrom('storedFiles').select(['key', 'content']).where('key', 'like', 'photos/%').execute();
    expect(storedPhotos.length).toBeGreaterThan(0);
    for (const f of storedPhotos) {
      expect(crypto.createHash('sha256').update(f.content).digest('hex'), `stored photo ${f.key} in clear`).not.toBe(m.photoSha256);
    }
    expect(fs.existsSync(path.join(fx.dataDir, 'blobs')), 'release-1 blob directory left on disk').toBe(false);

    // Archives of release 1 are re-sealed under the current epoch key and still open.
    const rows = await env.ctx.db.selectFrom('backupArchives').select(['id', 'keyEpochId']).where('destroyedAt', 'is', null).execute();
    expect(rows.length).toBeGreaterThan(0);
    expect(archives).toBe(rows.length);
    const current = await env.ctx.crypto.keys.currentEpoch(env.ctx.db);
    for (const a of rows) expect(a.keyEpochId).toBe(current!.id);
    const archiveService = env.services.port('archives');
    const doc = await archiveService.open(rows[0]!.id);
    expect(doc.format).toBe('lethe.subject-export/v1');

    // The deleted stay deleted; the subject export, exports and the audit chain work.
    expect((await api.get(`/v1/customers/${m.customers.deleted}`)).status).toBe(404);
    expect((await api.get(`/v1/customers?email=${encodeURIComponent(m.deletedEmails[0]!)}`)).body.data).toEqual([]);
    const subject = await api.get(`/v1/customers/${living}/export`);
    expect(subject.body.profile.email).toBe(m.living.email);
    const exported = await env.app.inject({ method: 'GET', url: '/v1/exports/customers?format=csv', headers: { authorization: `Bearer ${m.operatorKey}` } });
    expect(exported.body).toContain(m.living.email);
    expect(exported.body).not.toContain(m.deletedEmails[0]);
    expect((await api.get('/v1/audit-events/verify')).body.valid).toBe(true);

    // Deleting the migrated customer destroys its key like any other.
    expect((await api.del(`/v1/customers/${living}`)).status).toBe(204);
    expect(await env.ctx.db.selectFrom('customerKeys').select('customerId').where('customerId', '=', living).execute()).toEqual([]);
    expect((await api.get(`/v1/deletions/${living}`)).body.keyDestroyedAt).not.toBeNull();
  });
});
