import { parseArgs } from 'node:util';
import { insertKey } from '../auth/api-keys.ts';
import { bindAuditKey, reanchorAuditChain } from '../audit/audit.repo.ts';
import { restrictUmask } from '../storage/file-modes.ts';
import { deriveSecrets, loadMasterKey } from '../secrets.ts';
import { appendAudit } from '../audit/audit.repo.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { migrate, openDatabase } from '../db/database.ts';
import { existingApplicationIds } from '../applications/applications.repo.ts';
import { systemClock } from '../clock.ts';
import { serve } from '../main.ts';
import { CLI_COMMANDS, MIGRATIONS } from '../domains.ts';
import { problemDetail, runningServer } from './server-client.ts';
import { acquireDataDirLock } from '../deployment/data-dir-lock.ts';

const USAGE = `lethe — trustworthy customer deletion

Usage:
  lethe serve                               serve the API, console, scheduler and dispatcher
  lethe migrate                             apply database migrations and exit
  lethe keys create --operator              issue an operator API key (printed once)
  lethe keys create --application <id>...   issue an application key for one or more applications
${CLI_COMMANDS.map((c) => `  ${c.usage}`).join('\n')}

Configuration comes from the environment (see README): DATABASE_URL, LETHE_DATA_DIR, …`;

async function main(argv: string[]): Promise<number> {
  restrictUmask(); // files this command writes (PGlite, master key, backups) are readable by this user only
  const [command, sub] = argv;
  const config = loadConfig();
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return 0;
  }
  if (command === 'serve') {
    await serve();
    return -1; // keeps running
  }
  const server = runningServer(config);
  if (command === 'migrate') {
    if (server) {
      console.error(`lethe migrate: a server (pid ${server.pid}) serves this embedded database and applied its migrations at start; stop it to migrate with another version`);
      return 1;
    }
    const lock = config.databaseUrl ? null : acquireDataDirLock(config.dataDir, 'cli');
    try {
      const handle = await openDatabase({ ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}), dataDir: config.dataDir });
      try {
        const applied = await migrate(handle.db, MIGRATIONS);
        console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
      } finally { await handle.close(); }
    } finally { lock?.release(); }
    return 0;
  }
  if (command === 'keys' && sub === 'create') {
    const { values, positionals } = parseArgs({
      args: argv.slice(2), allowPositionals: true,
      options: { operator: { type: 'boolean' }, application: { type: 'boolean' } },
    });
    if (Boolean(values.operator) === Boolean(values.application)) {
      console.error('lethe keys create: give exactly one of --operator or --application <id>...');
      return 2;
    }
    if (server) {
      // The embedded database is being served: the server issues the key (src/cli/server-client.ts).
      const r = await server.call<{ key: string; id: string }>('POST', '/v1/api-keys', values.operator
        ? { kind: 'operator' } : { kind: 'application', applicationIds: positionals });
      if (r.status !== 201) { console.error(`lethe keys create: ${problemDetail(r.body)}`); return r.status >= 500 ? 1 : 2; }
      console.log(r.body.key);
      console.error(`(key id ${r.body.id}; shown once, store it now; issued by the running server, pid ${server.pid})`);
      return 0;
    }
    // No start-up bootstrap here: on an empty database the key issued now is the first key (a
    // generated one would otherwise be created unseen beside it).
    // The embedded database is ours while the key is issued (a server starting meanwhile refuses).
    const lock = config.databaseUrl ? null : acquireDataDirLock(config.dataDir, 'cli');
    const handle = await openDatabase({ ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}), dataDir: config.dataDir })
      .catch((e: Error) => { lock?.release(); throw e; });
    try {
      await migrate(handle.db, MIGRATIONS);
      const { db } = handle;
      const clock = systemClock;
      const secrets = deriveSecrets(loadMasterKey(config.masterKey, config.dataDir));
      const hashSecret = secrets.apiKeyHashKey;
      bindAuditKey(db, secrets.auditKey);
      await reanchorAuditChain(db, clock.now());
      const kind = values.operator ? 'operator' as const : 'application' as const;
      const applicationIds = kind === 'application' ? positionals : [];
      if (kind === 'application') {
        if (applicationIds.length === 0) { console.error('lethe keys create --application: name at least one application id'); return 2; }
        const known = applicationIds.every((id) => /^[0-9a-f-]{36}$/i.test(id))
          ? await existingApplicationIds(db, applicationIds) : new Set<string>();
        const unknown = applicationIds.filter((id) => !known.has(id));
        if (unknown.length) { console.error(`lethe keys create: unknown application ${unknown.join(', ')}`); return 2; }
      }
      const created = await db.transaction().execute(async (trx) => {
        const at = clock.now();
        const k = await insertKey(trx, { kind, applicationIds, createdByKeyId: null, at, hashSecret });
        await appendAudit(trx, { type: 'api_key.created', actorKeyId: null, subjectType: 'api_key', subjectId: k.id, at, data: { kind, applicationIds, via: 'cli' } });
        return k;
      });
      console.log(created.key);
      console.error(`(key id ${created.id}; shown once, store it now)`);
    } finally { await handle.close(); lock?.release(); }
    return 0;
  }
  const extra = CLI_COMMANDS.find((c) => c.matches(argv));
  if (extra) return extra.run(argv, config);
  console.error(`lethe: unknown command "${argv.join(' ')}"\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then((code) => { if (code >= 0) process.exit(code); }).catch((error: Error) => {
  console.error(`lethe: ${error instanceof ConfigError ? '' : 'failed: '}${error.message}`);
  process.exit(1);
});
