import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { createApplication, createCustomer, populate } from './helpers/fixtures.ts';
import { backupCommand, type CliIo } from '../src/backups/backups.cli.ts';
import type { DeletionStep } from '../src/erasure/deletion.service.ts';
import { DAY_MS } from '../src/clock.ts';

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
});
afterAll(async () => env?.close());

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex');

function captureIo() {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l) };
  return { io, out, err };
}

async function openArchive(id: string) {
  const c = captureIo();
  const code = await backupCommand(['backup', 'open', id], env.ctx, env.services, c.io);
  return { code, ...c };
}

const archiveBlobs = () => env.ctx.blobs.list('archives');

describe('sealed pre-deletion archives', () => {
  it('DELETE seals the export; listed as metadata only; opens (CLI) to the exact export', async () => {
    const app = await createApplication(api);
    const c = await createCustomer(api);
    await populate(api, c.id, [app.id]);
    expect((await api.put(`/v1/customers/${c.id}/profile-photo`, PNG, { 'content-type': 'image/png' })).status).toBe(204);
    const exported = await api.get(`/v1/customers/${c.id}/export?includePhoto=true`);
    expect(exported.status).toBe(200);

    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);

    const list = await api.get(`/v1/backups?customerId=${c.id}`);
    expect(list.status).toBe(200);
    expect(list.body.data).toHaveLength(1);
    const archive = list.body.data[0];
    expect(Object.keys(archive).sort()).toEqual(['createdAt', 'customerId', 'expiresAt', 'id']);
    expect(archive).toMatchObject({ customerId: c.id, createdAt: '2026-03-02T10:00:00.000Z', expiresAt: '2026-04-01T10:00:00.000Z' });
    // The API never returns the document.
    expect(list.raw).not.toContain(c.email);
    expect((await api.get(`/v1/deletions/${c.id}`)).body.backupId).toBe(archive.id);

    // After commit the ciphertext lives in the blob store, not the row; it holds no plaintext.
    const row = await env.ctx.db.selectFrom('backupArchives').selectAll().where('id', '=', archive.id).executeTakeFirstOrThrow();
    expect(row.sealed).toBeNull();
    expect(row.blobKey).toMatch(/^archives\//);
    const sealed = (await env.ctx.blobs.get(row.blobKey!))!;
    expect(sealed.includes(Buffer.from(c.email))).toBe(false);

    const opened = await openArchive(archive.id);
    expect(opened.code).toBe(0);
    expect(JSON.parse(opened.out.join('\n'))).toEqual(exported.body);
    const audit = await env.ctx.db.selectFrom('auditEvents').select(['type', 'data'])
      .where((eb) => eb.or([eb('subjectId', '=', c.id), eb('subjectId', '=', archive.id)])).execute();
    expect(audit.map((a) => a.type).sort()).toEqual(['backup.archive_created', 'backup.archive_opened', 'customer.deleted', 'customer.exported']);
    expect(audit.find((a) => a.type === 'backup.archive_created')!.data).toMatchObject({ customerId: c.id });
    expect(JSON.stringify(audit)).not.toContain(c.email);

    // Paginated listing over all archives.
    const page = await api.get('/v1/backups?limit=1');
    expect(page.body.data).toHaveLength(1);
    expect(page.body).toHaveProperty('nextCursor');
    expect((await api.get('/v1/backups?customerId=nope')).status).toBe(400);
  });

  it('a DELETE that rolls back leaves no archive row and no archive file', async () => {
    const c = await createCustomer(api);
    const before = (await archiveBlobs()).length;
    const failing: DeletionStep = { name: 'boom', phase: 'after', order: 99, run: async () => { throw new Error('injected failure'); } };
    env.services.deletionSteps.push(failing);
    try {
      expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(500);
    } finally {
      env.services.deletionSteps.splice(env.services.deletionSteps.indexOf(failing), 1);
    }
    expect(await env.ctx.db.selectFrom('backupArchives').select('id').where('customerId', '=', c.id).execute()).toEqual([]);
    expect((await archiveBlobs()).length).toBe(before);
    expect((await api.get(`/v1/customers/${c.id}`)).status).toBe(200);
    // A blocked DELETE seals nothing either.
    await api.patch(`/v1/customers/${c.id}`, { legalHold: true });
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(409);
    expect(await env.ctx.db.selectFrom('backupArchives').select('id').where('customerId', '=', c.id).execute()).toEqual([]);
  });

  it('a step\'s prefetch is read by the blocker statement, handed over before any step runs, also for a refused DELETE', async () => {
    const app = await createApplication(api);
    const c = await createCustomer(api);
    await populate(api, c.id, [app.id]);
    const live = Number((await env.ctx.db.selectFrom('addresses').select((eb) => eb.fn.countAll().as('n'))
      .where('customerId', '=', c.id).where('deletedAt', 'is', null).executeTakeFirstOrThrow()).n);
    expect(live).toBeGreaterThan(0);
    const seen: string[] = [];
    const probe: DeletionStep = {
      name: 'probe', phase: 'before', order: 5,
      async prefetch(_trx, customerId) {
        return {
          select: (q) => `(SELECT count(*) FROM addresses WHERE customer_id = ${q.param(customerId, 'uuid')} AND deleted_at IS NULL)`,
          adopt: (value) => { seen.push(`adopt:${Number(value)}`); },
        };
      },
      run: async () => { seen.push('run'); return null; },
    };
    env.services.deletionSteps.push(probe);
    try {
      await api.patch(`/v1/customers/${c.id}`, { legalHold: true });
      expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(409);
      expect(seen).toEqual([`adopt:${live}`]);
      await api.patch(`/v1/customers/${c.id}`, { legalHold: false });
      expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
      expect(seen).toEqual([`adopt:${live}`, `adopt:${live}`, 'run']);
    } finally {
      env.services.deletionSteps.splice(env.services.deletionSteps.indexOf(probe), 1);
    }
  });

  it('an archive whose file move was interrupted still opens, and the retention job finishes the move', async () => {
    const c = await createCustomer(api);
    const steps = env.services.deletionSteps;
    expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
    // An archive written by a release before 0007: ciphertext still in its row (moved after commit then).
    const stored = await env.ctx.db.selectFrom('backupArchives').select(['id', 'blobKey']).where('customerId', '=', c.id).executeTakeFirstOrThrow();
    await env.ctx.db.updateTable('backupArchives').set({ sealed: (await env.ctx.blobs.get(stored.blobKey!))!, blobKey: null }).where('id', '=', stored.id).execute();
    await env.ctx.blobs.delete(stored.blobKey!);
    const row = await env.ctx.db.selectFrom('backupArchives').selectAll().where('customerId', '=', c.id).executeTakeFirstOrThrow();
    expect(row.sealed).not.toBeNull();
    expect(row.blobKey).toBeNull();
    const opened = await openArchive(row.id);
    expect(opened.code).toBe(0);
    expect(JSON.parse(opened.out.join('\n')).profile.email).toBe(c.email);
    const job = await api.post('/v1/jobs/retention/run');
    expect(job.status).toBe(200);
    expect(job.body.result.backups.archivesMoved).toBe(1);
    const moved = await env.ctx.db.selectFrom('backupArchives').selectAll().where('id', '=', row.id).executeTakeFirstOrThrow();
    expect(moved.sealed).toBeNull();
    expect(await env.ctx.blobs.exists(moved.blobKey!)).toBe(true);
  });

  it('the retention job destroys archives past backupRetentionDays (file and row), audited; younger ones stay', async () => {
    const start = env.clock.now();
    const old = await createCustomer(api);
    expect((await api.del(`/v1/customers/${old.id}`)).status).toBe(204);
    env.clock.advance(20 * DAY_MS);
    const young = await createCustomer(api);
    expect((await api.del(`/v1/customers/${young.id}`)).status).toBe(204);
    const oldArchive = (await api.get(`/v1/backups?customerId=${old.id}`)).body.data[0];
    const youngArchive = (await api.get(`/v1/backups?customerId=${young.id}`)).body.data[0];
    const oldKey = (await env.ctx.db.selectFrom('backupArchives').select('blobKey').where('id', '=', oldArchive.id).executeTakeFirstOrThrow()).blobKey!;

    env.clock.set(new Date(start.getTime() + 29 * DAY_MS));
    let job = await api.post('/v1/jobs/retention/run');
    expect(job.body.result.backups.archivesDestroyed).toBe(0);

    env.clock.set(new Date(start.getTime() + 30 * DAY_MS + 1000));
    job = await api.post('/v1/jobs/retention/run');
    expect(job.status).toBe(200);
    expect(job.body.result.backups.archivesDestroyed).toBeGreaterThanOrEqual(1);

    expect((await api.get(`/v1/backups?customerId=${old.id}`)).body.data).toEqual([]);
    expect((await api.get(`/v1/backups?customerId=${young.id}`)).body.data).toHaveLength(1);
    expect(await env.ctx.blobs.exists(oldKey)).toBe(false);
    const tomb = await env.ctx.db.selectFrom('backupArchives').selectAll().where('id', '=', oldArchive.id).executeTakeFirstOrThrow();
    expect(tomb.destroyedAt).not.toBeNull();
    expect(tomb.sealed).toBeNull();
    expect(tomb.blobKey).toBeNull();
    const gone = await openArchive(oldArchive.id);
    expect(gone.code).toBe(1);
    expect(gone.err.join('\n')).toContain('destroyed');
    expect((await openArchive(youngArchive.id)).code).toBe(0);
    const destroyed = await env.ctx.db.selectFrom('auditEvents').selectAll().where('type', '=', 'backup.archive_destroyed')
      .where('subjectId', '=', oldArchive.id).execute();
    expect(destroyed).toHaveLength(1);
    expect(destroyed[0]!.data).toMatchObject({ customerId: old.id, reason: 'retention' });
    expect((await api.get('/v1/audit-events/verify')).body.valid).toBe(true);
  });
});
