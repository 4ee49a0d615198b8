import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { markerPath } from '../src/deployment/guards.ts';
import type { ReleaseFixture } from './helpers/release-fixture.ts';
import { useReleaseFixture } from './helpers/upgrade.ts';
import { client, type Client, type TestEnv } from './helpers/runtime.ts';

/**
 * Migration 0007 on a database written by release 1 (users upgrade): the files release 1 kept
 * under the data directory move into the database, the deployment identity is recorded, the
 * journal's existing entries count as appended, and everything still serves and verifies.
 */
let fx: ReleaseFixture;
let env: TestEnv;
let api: Client;
useReleaseFixture((f, e) => {
  fx = f; env = e;
  api = client(env.app, fx.manifest.operatorKey);
}, {
  clockStart: null,
  beforeStart: (f) => { expect(fs.existsSync(path.join(f.dataDir, 'blobs', 'photos'))).toBe(true); },
});

describe('migration 0007 on a release-1 database', () => {
  it('moves the data directory\'s photo and archives into the database and removes them from disk', async () => {
    expect(fs.existsSync(path.join(fx.dataDir, 'blobs'))).toBe(false);
    const living = fx.manifest.customers.living;
    const photo = await env.app.inject({ method: 'GET', url: `/v1/customers/${living}/profile-photo`, headers: { authorization: `Bearer ${fx.manifest.operatorKey}` } });
    expect(photo.statusCode).toBe(200);
    expect(crypto.createHash('sha256').update(photo.rawPayload).digest('hex')).toBe(fx.manifest.photoSha256);
    const archives = await env.ctx.db.selectFrom('backupArchives').select(['id', 'blobKey']).where('destroyedAt', 'is', null).execute();
    expect(archives.length).toBeGreaterThan(0);
    for (const a of archives) {
      expect(await env.ctx.blobs.exists(a.blobKey!)).toBe(true);
      const doc = await env.services.port('archives').open(a.id);
      expect(doc.format).toBeDefined();
    }
  });

  it('records the master key and the backup location; marks existing journal entries appended; adds the settings with defaults', async () => {
    const d = await env.ctx.db.selectFrom('deployment').selectAll().executeTakeFirstOrThrow();
    expect(d.keyFingerprint).toBe(env.ctx.secrets.fingerprint);
    expect(JSON.parse(fs.readFileSync(markerPath(env.config), 'utf8')).id).toBe(d.backupMarkerId);
    const journal = await env.ctx.db.selectFrom('erasureJournal').select('fileAppendedAt').execute();
    expect(journal.length).toBeGreaterThan(0);
    for (const j of journal) expect(j.fileAppendedAt).not.toBeNull();
    expect((await api.get('/v1/settings')).body).toMatchObject({ databaseBackupEnabled: false, webhookLogRetentionDays: 30, jobRunRetentionDays: 90 });
  });

  it('release 1\'s database backup restores with the photo kept (its bytes were not in old backups)', async () => {
    const { backupCommand } = await import('../src/backups/backups.cli.ts');
    const out: string[] = [];
    const io = { out: (l: string) => out.push(l), err: (l: string) => out.push(l) };
    const code = await backupCommand(['backup', 'restore', path.join(fx.backupDir, fx.manifest.databaseBackup)], env.ctx, env.services, io);
    expect(code, out.join('\n')).toBe(0);
    const photo = await env.app.inject({ method: 'GET', url: `/v1/customers/${fx.manifest.customers.living}/profile-photo`, headers: { authorization: `Bearer ${fx.manifest.operatorKey}` } });
    expect(photo.statusCode).toBe(200);
    expect(crypto.createHash('sha256').update(photo.rawPayload).digest('hex')).toBe(fx.manifest.photoSha256);
  });

  it('deleted customers stay deleted, the audit chain verifies; a DELETE removes the photo bytes', async () => {
    expect((await api.get(`/v1/customers/${fx.manifest.customers.deleted}`)).status).toBe(404);
    expect((await api.get(`/v1/deletions/${fx.manifest.customers.deleted}`)).status).toBe(200);
    expect((await api.get('/v1/audit-events/verify')).body.valid).toBe(true);
    const del = await api.del(`/v1/customers/${fx.manifest.customers.living}`);
    expect(del.status, JSON.stringify(del.body)).toBe(204);
    expect((await api.get(`/v1/customers/${fx.manifest.customers.living}/profile-photo`)).status).toBe(404);
    expect(await env.ctx.blobs.list('photos')).toEqual([]);
  });
});
