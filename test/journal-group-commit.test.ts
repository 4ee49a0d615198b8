import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEntry, journalPath, newEntry, readFile as readJournalFile, readTable } from '../src/backups/erasure-journal.ts';
import { claimPending } from '../src/backups/journal.repo.ts';
import { JOURNAL_WRITER_LOCK, lockJournalWriter } from '../src/deployment/guards.ts';
import { createCustomer } from './helpers/fixtures.ts';
import { client, createTestEnv, TEST_DB, type Client, type TestEnv } from './helpers/runtime.ts';
import { someoneWaitsOnAdvisoryLock } from './helpers/lock-waits.ts';

/** Issue 14: the post-commit erasure-journal flush is shared by concurrent deletions (group commit). */
let env: TestEnv;
let api: Client;
let baseUrl: string;
beforeAll(async () => {
  env = await createTestEnv({ clockStart: '2026-06-01T08:00:00Z' });
  api = client(env.app, env.operatorKey);
  baseUrl = await env.app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => { await env?.close(); });

const file = () => journalPath(env.config);
const linesOf = (id: string) => {
  try { return fs.readFileSync(file(), 'utf8').split('\n').filter((l) => l.includes(id)).length; } catch { return 0; }
};
const flushes = async () => {
  const out: Record<string, number> = {};
  for (const v of (await env.ctx.metrics.journalFlushes.get()).values) out[String(v.labels.outcome)] = v.value;
  return out;
};
const del = (id: string) => fetch(`${baseUrl}/v1/customers/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${env.operatorKey}` } });

describe('group commit of the erasure-journal file', () => {
  it('N concurrent DELETEs over HTTP: each deletion is in the file when its 204 arrives, exactly once; fewer flushes than deletions', async () => {
    const N = 24;
    const ids: string[] = [];
    for (let i = 0; i < N; i++) ids.push((await createCustomer(api)).id);
    const before = await flushes();
    const linesBefore = (await env.ctx.metrics.journalLines.get()).values[0]?.value ?? 0;
    const seenAt204 = await Promise.all(ids.map(async (id) => {
      const r = await del(id);
      // Read the file the moment this response arrives, before any other await.
      const lines = linesOf(id);
      return { status: r.status, lines };
    }));
    for (const s of seenAt204) expect(s).toEqual({ status: 204, lines: 1 });
    const after = await flushes();
    const appended = (after.appended ?? 0) - (before.appended ?? 0);
    const all = appended + (after.empty ?? 0) - (before.empty ?? 0);
    expect(appended).toBeGreaterThanOrEqual(1);
    expect(all).toBeLessThan(N);
    expect(after.failed ?? 0).toBe(before.failed ?? 0);
    expect(((await env.ctx.metrics.journalLines.get()).values[0]?.value ?? 0) - linesBefore).toBe(N);
    // Every entry marked appended, and the file parses to each once.
    const rows = await env.ctx.db.selectFrom('erasureJournal').select(['customerId', 'fileAppendedAt']).where('customerId', 'in', ids).execute();
    expect(rows).toHaveLength(N);
    for (const r of rows) expect(r.fileAppendedAt).not.toBeNull();
    const inFile = readJournalFile(env.config).filter((e) => ids.includes(e.customerId));
    expect(inFile.map((e) => e.customerId).sort()).toEqual([...ids].sort());
  }, 120_000);

  it('a failed flush leaves the entry pending (204 still answered); a later flush appends it once, skipping lines a failed writer left', async () => {
    const [a, b, c] = [await createCustomer(api), await createCustomer(api), await createCustomer(api)];
    // The journal file unwritable while the backup location's marker stays readable (so the DELETE
    // is not refused): a directory in its place (tests run as root, so a chmod would not stop a write).
    const away = `${file()}.away`;
    fs.renameSync(file(), away);
    fs.mkdirSync(file());
    const failedBefore = (await flushes()).failed ?? 0;
    try {
      expect((await del(a.id)).status).toBe(204);
      expect((await del(b.id)).status).toBe(204);
    } finally {
      fs.rmdirSync(file());
      fs.renameSync(away, file());
    }
    expect(((await flushes()).failed ?? 0) - failedBefore).toBeGreaterThanOrEqual(1);
    const pending = await env.ctx.db.selectFrom('erasureJournal').select(['id', 'customerId'])
      .where('fileAppendedAt', 'is', null).execute();
    expect(pending.map((p) => p.customerId).sort()).toEqual([a.id, b.id].sort());
    expect(linesOf(a.id) + linesOf(b.id)).toBe(0);

    // Another writer appended a's line and died before its commit (a stays pending), and a crash
    // tore a line after it: the next flush must neither duplicate a nor lose a line to the torn one.
    const entryA = (await readTable(env.ctx.db)).find((e) => e.customerId === a.id)!;
    fs.appendFileSync(file(), `${JSON.stringify(entryA)}\n{"id":"${entryA.id.slice(0, 12)}`);

    expect((await del(c.id)).status).toBe(204);
    for (const id of [a.id, b.id, c.id]) expect(linesOf(id)).toBe(1);
    const parsed = readJournalFile(env.config);
    for (const id of [a.id, b.id, c.id]) expect(parsed.filter((e) => e.customerId === id)).toHaveLength(1);
    expect(await env.ctx.db.selectFrom('erasureJournal').select('id').where('fileAppendedAt', 'is', null).execute()).toEqual([]);
    expect(fs.statSync(file()).mode & 0o777).toBe(0o600);
    expect(path.dirname(file())).toBe(env.config.backupDir);
  }, 120_000);

  it.skipIf(TEST_DB !== 'postgres')('a claim that waited for the writer lock claims what was committed while it waited (PostgreSQL)', async () => {
    // lethe_journal_claim (migration 0017) takes the lock and claims in one call: the claim must see
    // entries committed while it waited, or their DELETEs would return before their line is written.
    const db = env.ctx.db;
    const at = new Date('2026-06-01T09:00:00Z');
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    let locked!: () => void;
    const holding = new Promise<void>((r) => { locked = r; });
    const holder = db.transaction().execute(async (trx) => {
      await lockJournalWriter(trx);
      locked();
      await held;
    });
    await holding;
    const claim = db.transaction().execute((trx) => claimPending(trx, at, JOURNAL_WRITER_LOCK));
    const waited = await someoneWaitsOnAdvisoryLock(db);
    // Committed while the claim waits: after its statement began, before it got the lock.
    const entry = newEntry({ kind: 'deletion', customerId: crypto.randomUUID(), caseId: null, applicationId: null, actorKeyId: null, at });
    await insertEntry(db, entry, at);
    release();
    await holder;
    expect(waited, 'the claim waited for the writer lock').toBe(true);
    expect((await claim).map((e) => e.id)).toContain(entry.id);
  });
});
