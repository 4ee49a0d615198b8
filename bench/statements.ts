// `node bench/statements.ts`: the SQL statements one DELETE /v1/customers/{id} issues (a standard
// customer, default settings, PostgreSQL), and how many of them run while the audit chain's lock
// is held — the serialized part that bounds deletions per second. Prints them in order.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { findPrincipal } from '../src/auth/api-keys.ts';
import { loadConfig } from '../src/config.ts';
import { startRuntime } from '../src/runtime.ts';
import { createServices } from '../src/services.ts';
import { defaultKeyringDir } from '../src/crypto/keyring.ts';
import { standardCustomersDatabase } from './fixtures.ts';
import { ADMIN_KEY, createDatabase, MASTER_KEY } from './lib.ts';

const AUDIT_LOCK = String(0x4c455448);
const db = await createDatabase('statements');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-statements-'));
try {
  const ids = await standardCustomersDatabase(db.url, dataDir, 2);
  const config = loadConfig({
    DATABASE_URL: db.url, LETHE_DATA_DIR: dataDir, LETHE_ADMIN_KEY: ADMIN_KEY, LETHE_MASTER_KEY: MASTER_KEY,
    LOG_LEVEL: 'silent', LETHE_SCHEDULER: 'false', LETHE_DISPATCHER: 'false',
  });
  const rt = await startRuntime(config, { log: pino({ level: 'silent' }) });
  try {
    const services = createServices(rt.ctx);
    const principal = (await findPrincipal(rt.ctx.db, ADMIN_KEY, rt.ctx.secrets.apiKeyHashKey))!;
    await services.port('deletion').delete(principal, ids[0]!); // warm-up
    const seen: Array<{ text: string; lock: boolean; commit: boolean; piped: { begin: boolean; commit: boolean } }> = [];
    const original = pg.Client.prototype.query;
    (pg.Client.prototype as any).query = function (this: pg.Client, ...args: any[]) {
      // A statement sent with its transaction's BEGIN and/or COMMIT in one write (prepared-client.ts PipelinedQuery).
      const piped = typeof args[0] === 'object' ? { begin: args[0]?.withBegin === true, commit: args[0]?.withCommit === true } : { begin: false, commit: false };
      const text = String(typeof args[0] === 'string' ? args[0] : args[0]?.text ?? '');
      const values = (typeof args[0] === 'string' ? args[1] : args[0]?.values) as unknown[] | undefined;
      seen.push({ text: text.replace(/\s+/g, ' ').trim(), piped, commit: piped.commit || /^\s*commit\s*$/i.test(text),
        lock: /pg_advisory_xact_lock\(\$1\)|lethe_audit_head\(\$1\)/.test(text) && String(values?.[0]) === AUDIT_LOCK });
      return (original as any).apply(this, args);
    };
    try {
      await services.port('deletion').delete(principal, ids[1]!);
    } finally {
      (pg.Client.prototype as any).query = original;
    }
    const first = seen.findIndex((s) => s.lock);
    const commit = seen.findIndex((s, i) => i >= first && s.commit);
    seen.forEach((s, i) => console.log(`${String(i).padStart(3)} ${first >= 0 && i >= first && i <= commit ? 'L' : ' '} `
      + `${s.piped.begin ? 'BEGIN + ' : ''}${s.text.slice(0, Number(process.env.STMT_WIDTH ?? 110))}${s.piped.commit ? ' + COMMIT' : ''}`));
    console.log(`\n${seen.length} round trips (+1 API key lookup per HTTP request; BEGIN and COMMIT marked with a statement go out in its write); ${first >= 0 ? commit - first + 1 : 0} of them`
      + ' from the first audit-chain lock to COMMIT (L), serialized across all deletions');
  } finally {
    await rt.close();
  }
} finally {
  await db.drop();
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.rmSync(defaultKeyringDir(dataDir), { recursive: true, force: true });
}
