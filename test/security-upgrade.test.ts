// Issue 17 on a database written by release 1 (test/helpers/release-fixture.ts): migration 0006
// and the start-up steps that need the master key (chain re-keyed, secrets sealed, keys rehashed).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { AUDIT_REKEYED, hashEvent } from '../src/audit/audit.repo.ts';
import { openWebhookSecret } from '../src/applications/webhook-secrets.ts';
import { legacyHashKey } from '../src/auth/api-keys.ts';
import { restoreDatabaseBackup } from '../src/backups/restore.ts';
import type { ReleaseFixture } from './helpers/release-fixture.ts';
import { useReleaseFixture } from './helpers/upgrade.ts';
import { client, type TestEnv } from './helpers/runtime.ts';

let fx: ReleaseFixture;
let env: TestEnv;
let legacyHashes: Map<string, string>;
let modesBefore: number[];

function modes(root: string): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  const visit = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) return;
    out.push([p, st.mode & 0o777]);
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) visit(path.join(p, n));
  };
  visit(root);
  return out;
}

useReleaseFixture((f, e) => {
  fx = f; env = e;
  legacyHashes = new Map([[fx.manifest.operatorKey, legacyHashKey(fx.manifest.operatorKey)], [fx.manifest.applicationKey, legacyHashKey(fx.manifest.applicationKey)]]);
}, {
  // Release 1 stored keys as unkeyed SHA-256 and the fixture's files with the default umask.
  beforeStart: (f) => { modesBefore = modes(f.dataDir).map(([, m]) => m); },
  env: (f) => ({ LETHE_ADMIN_KEY: f.manifest.operatorKey }),
});

describe('upgrade from release 1 (issue 17)', () => {
  it('existing files become 0600 and directories 0700 at start', () => {
    expect(modesBefore.some((m) => (m & 0o077) !== 0)).toBe(true); // the fixture had group/other bits
    for (const [p, m] of [...modes(fx.dataDir), ...modes(fx.backupDir)]) {
      const isDir = fs.statSync(p).isDirectory();
      // PGlite recreates some of its files while running (0666, it ignores the umask): they sit in
      // 0700 directories, and are brought back to 0600 by the runtime's sweep and at close.
      if (!isDir && p.includes(`${path.sep}pglite${path.sep}`)) continue;
      expect(m & 0o077, p).toBe(0);
    }
    expect(fs.statSync(fx.dataDir).mode & 0o777).toBe(0o700);
  });

  it('the unkeyed chain is re-anchored once, audited, and verifies', async () => {
    const rekeyed = await env.ctx.db.selectFrom('auditEvents').selectAll().where('type', '=', AUDIT_REKEYED).execute();
    expect(rekeyed).toHaveLength(1);
    const legacyUntil = Number((rekeyed[0]!.data as { legacyUntilSeq: number }).legacyUntilSeq);
    expect(legacyUntil).toBe(fx.manifest.auditEvents);
    expect(Number(rekeyed[0]!.seq)).toBe(legacyUntil + 1);
    const v = await client(env.app, fx.manifest.operatorKey).get('/v1/audit-events/verify');
    expect(v.body).toMatchObject({ valid: true, problems: [] });
  });

  it('rewriting the unkeyed part (hashes recomputed with release 1\'s function) is caught at the re-anchoring', async () => {
    const rows = await env.ctx.db.selectFrom('auditEvents').selectAll().orderBy('seq').execute();
    const legacy = rows.filter((r) => r.type !== AUDIT_REKEYED && Number(r.seq) <= fx.manifest.auditEvents);
    const forged = legacy.map((r) => ({ ...r, seq: Number(r.seq), data: r.data as Record<string, unknown> }));
    forged[1]!.actorKeyId = null;
    for (let i = 1; i < forged.length; i++) { forged[i]!.prevHash = forged[i - 1]!.hash; forged[i]!.hash = hashEvent(forged[i]!, null); }
    await sql`ALTER TABLE audit_events DISABLE TRIGGER USER`.execute(env.ctx.db);
    try {
      for (const f of forged.slice(1)) {
        await sql`UPDATE audit_events SET actor_key_id = ${f.actorKeyId}, prev_hash = ${f.prevHash}, hash = ${f.hash} WHERE seq = ${f.seq}`.execute(env.ctx.db);
      }
      const v = await client(env.app, fx.manifest.operatorKey).get('/v1/audit-events/verify');
      expect(v.body.valid).toBe(false);
      expect(v.body.firstInvalidSeq).toBe(fx.manifest.auditEvents + 1);
    } finally {
      for (const r of legacy.slice(1)) {
        await sql`UPDATE audit_events SET actor_key_id = ${r.actorKeyId}, prev_hash = ${r.prevHash}, hash = ${r.hash} WHERE seq = ${r.seq}`.execute(env.ctx.db);
      }
      await sql`ALTER TABLE audit_events ENABLE TRIGGER USER`.execute(env.ctx.db);
    }
    expect((await client(env.app, fx.manifest.operatorKey).get('/v1/audit-events/verify')).body.valid).toBe(true);
  });

  it('the table refuses UPDATE and DELETE after the migration', async () => {
    await expect(sql`DELETE FROM audit_events WHERE seq = 1`.execute(env.ctx.db)).rejects.toThrow(/append-only/);
    await expect(sql`UPDATE audit_events SET type = 'x' WHERE seq = 1`.execute(env.ctx.db)).rejects.toThrow(/append-only/);
  });

  it('webhook secrets stored in clear are sealed, and open to the same secret', async () => {
    const rows = await env.ctx.db.selectFrom('applications').select(['id', 'webhookSecret']).execute();
    const byId = new Map(rows.map((r) => [r.id, r.webhookSecret]));
    for (const [app, secret] of [[fx.manifest.applications.a, fx.manifest.webhookSecrets.a], [fx.manifest.applications.b, fx.manifest.webhookSecrets.b]] as const) {
      const stored = byId.get(app)!;
      expect(stored.startsWith('env:')).toBe(true);
      expect(stored).not.toContain(secret.slice(6, 20));
      expect(openWebhookSecret(env.ctx.secrets.storedSecretsKey, app, stored)).toBe(secret);
      // Bound to its application: the same ciphertext does not open for another one.
      expect(() => openWebhookSecret(env.ctx.secrets.storedSecretsKey, crypto.randomUUID(), stored)).toThrow();
    }
  });

  it('release 1 keys keep working and are rehashed with the server secret on first use; the chosen key keeps no prefix', async () => {
    for (const [key, legacy] of legacyHashes) {
      const r = await client(env.app, key).get(key.startsWith('lethe_op_') ? '/v1/customers' : '/v1/data-deletions');
      expect(r.status).toBe(200);
      const row = await env.ctx.db.selectFrom('apiKeys').select('keyHash').where('keyHash', '=', legacy).executeTakeFirst();
      expect(row).toBeUndefined();
    }
    const all = await env.ctx.db.selectFrom('apiKeys').selectAll().execute();
    expect(all.filter((k) => k.keyHash.startsWith('hmac1:')).length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(all.map((k) => Object.values(k)))).not.toContain(fx.manifest.operatorKey.slice(9, 16));
    expect(all.find((k) => k.keyPrefix.startsWith('lethe_op_fix'))).toBeUndefined();
  });

  it('restoring release 1\'s own backup: a recorded fork, re-anchored, verify valid', async () => {
    const file = path.join(fx.backupDir, fx.manifest.databaseBackup);
    const before = (await client(env.app, fx.manifest.operatorKey).get('/v1/audit-events/verify')).body;
    await restoreDatabaseBackup(env.ctx, env.services.registry, fs.existsSync(file) ? file : fx.manifest.databaseBackup);
    const v = (await client(env.app, fx.manifest.operatorKey).get('/v1/audit-events/verify')).body;
    expect(v.problems).toEqual([]);
    expect(v.valid).toBe(true);
    expect(v.restores.at(-1)).toMatchObject({ replacedSeq: before.head.seq });
  }, 120_000);
});
