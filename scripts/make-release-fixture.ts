// Writes test/fixtures/<release>/: a database filled by THIS checkout's code, so later releases can
// prove their migrations on data a real user of this release has (photos, deletions, keys,
// confirmations, audit chain, sealed archives, erasure journal, one database backup).
// Run it on the commit of a landed release, never on newer code:
//   git worktree add /tmp/rel <release-commit> && cd /tmp/rel && npm install && \
//   node scripts/make-release-fixture.ts release-N && cp -r test/fixtures/release-N <repo>/test/fixtures/
// It needs PostgreSQL on 127.0.0.1:5432 (or LETHE_TEST_PG_URL) and pg_dump.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { buildApp } from '../src/app.ts';
import { fakeClock } from '../src/clock.ts';
import { loadConfig } from '../src/config.ts';
import { startRuntime } from '../src/runtime.ts';
import { createServices } from '../src/services.ts';
import { createDatabaseBackup } from '../src/backups/database-backup.ts';
import { client, createPgDatabase } from '../test/helpers/runtime.ts';
import { add, createAppKey, createApplication, createCustomer, customerBody, populate } from '../test/helpers/fixtures.ts';

const release = process.argv[2] ?? 'release-1';
const out = path.resolve('test/fixtures', release);
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-fixture-'));
const dataDir = path.join(work, 'data');
const backupDir = path.join(work, 'backups');
const masterKey = crypto.randomBytes(32).toString('base64');
const operatorKey = `lethe_op_fixture_${crypto.randomBytes(16).toString('hex')}`;
const pgDb = await createPgDatabase();
const config = loadConfig({
  DATABASE_URL: pgDb.url, LETHE_DATA_DIR: dataDir, LETHE_BACKUP_DIR: backupDir, LETHE_MASTER_KEY: masterKey,
  LETHE_ADMIN_KEY: operatorKey, LETHE_WEBHOOK_ALLOW_PRIVATE: 'true', LETHE_SCHEDULER: 'false',
  LETHE_DISPATCHER: 'false', LOG_LEVEL: 'silent',
});
const clock = fakeClock('2026-11-20T10:00:00Z');
const runtime = await startRuntime(config, { clock, log: pino({ level: 'silent' }), withDefaultMetrics: false });
const services = createServices(runtime.ctx);
const app = await buildApp(runtime.ctx, services);
const api = client(app, operatorKey);
const ok = (r: { status: number; body: unknown }, status: number, what: string) => {
  if (r.status !== status) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as any;
};

// A 1x1 PNG, so photo bytes are a real image of the type they claim.
const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

const appA = await createApplication(api, 'Fixture App A', 'http://127.0.0.1:9/hook');
const appB = await createApplication(api, 'Fixture App B', null);
const appKeyA = await createAppKey(api, [appA.id]);
const apiA = client(app, appKeyA);

const living = await createCustomer(api, { ...customerBody('living1'), email: 'living.one@fixture.example' });
const livingIds = await populate(api, living.id, [appA.id]);
ok(await api.put(`/v1/customers/${living.id}/profile-photo`, png, { 'content-type': 'image/png' }), 204, 'photo living');
const inGrace = await createCustomer(api, { ...customerBody('grace1'), email: 'in.grace@fixture.example' });
const graceIds = await populate(api, inGrace.id, [appA.id]);
ok(await api.post(`/v1/licenses/${graceIds.licenseIds[0]}/cancel`), 200, 'cancel license');

const deleted = await createCustomer(api, { ...customerBody('deleted1'), email: 'deleted.one@fixture.example' });
await populate(api, deleted.id, [appA.id, appB.id]);
ok(await api.put(`/v1/customers/${deleted.id}/profile-photo`, png, { 'content-type': 'image/png' }), 204, 'photo deleted');
clock.advance(60_000);
ok(await api.del(`/v1/customers/${deleted.id}`), 204, 'delete');
ok(await api.post('/v1/jobs/deletion-notifications/run'), 200, 'notify');
const confirmation = ok(await apiA.post('/v1/data-deletions/confirmations', { subscriptionId: deleted.id }), 200, 'confirm');

const confirmedLater = await createCustomer(api, { ...customerBody('deleted2'), email: 'deleted.two@fixture.example' });
await add(api, confirmedLater.id, 'licenses', { applicationId: appA.id });
clock.advance(60_000);
ok(await api.del(`/v1/customers/${confirmedLater.id}`), 204, 'delete 2');

ok(await api.patch('/v1/settings', { gracePeriodDays: 30 }), 200, 'settings');
clock.advance(3_600_000);
ok(await api.post('/v1/jobs/grace-periods/run'), 200, 'grace');
const backup = await createDatabaseBackup(runtime.ctx, null);
const verify = ok(await api.get('/v1/audit-events/verify'), 200, 'verify');
if (!verify.valid) throw new Error('audit chain invalid in fixture');

await Promise.all(services.background.map((b) => b.stop()));
await app.close();
await runtime.close();

// --inserts: plain SQL both PostgreSQL and PGlite execute; psql meta-commands are stripped on load.
const dump = execFileSync('pg_dump', ['--inserts', '--no-owner', '--no-privileges', '--no-comments', pgDb.url], { maxBuffer: 64 << 20 });
fs.writeFileSync(path.join(out, 'database.sql'), dump);
await pgDb.drop();
fs.cpSync(dataDir, path.join(out, 'data'), { recursive: true, filter: (src) => !src.includes(`${path.sep}pglite`) });
fs.cpSync(backupDir, path.join(out, 'backups'), { recursive: true });
fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify({
  release,
  commit: execFileSync('git', ['rev-parse', 'HEAD']).toString().trim(),
  masterKey, operatorKey, applicationKey: appKeyA,
  applications: { a: appA.id, b: appB.id },
  webhookSecrets: { a: appA.webhookSecret, b: appB.webhookSecret },
  customers: { living: living.id, inGrace: inGrace.id, deleted: deleted.id, deletedUnconfirmed: confirmedLater.id },
  living: { email: 'living.one@fixture.example', ...livingIds },
  deletedEmails: ['deleted.one@fixture.example', 'deleted.two@fixture.example'],
  confirmationId: confirmation.id ?? null,
  databaseBackup: path.basename(backup.path),
  auditEvents: verify.count,
  photoSha256: crypto.createHash('sha256').update(png).digest('hex'),
}, null, 2) + '\n');
fs.rmSync(work, { recursive: true, force: true });
console.log(`wrote ${out}`);
