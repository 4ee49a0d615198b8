import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.ts';
import { AppError } from '../http/errors.ts';
import type { CliCommand } from '../plugin/registry.ts';
import type { KeyView } from './api-keys.service.ts';

/**
 * `lethe keys list|revoke <id>`. PGlite admits one process: while a server serves the embedded
 * database, the CLI goes through that server's HTTP API (found through `<dataDir>/server.json`,
 * written by the server while it listens) with an operator key from LETHE_API_KEY. Otherwise
 * (no server, or DATABASE_URL: any number of processes) it opens the database itself.
 */
export const KEYS_USAGE = 'lethe keys list | keys revoke <id>';

export interface ServerInfo { pid: number; url: string; startedAt: string }

export const serverInfoPath = (config: Pick<Config, 'dataDir'>) => path.join(config.dataDir, 'server.json');

/** Written by `serve` once listening; removed at shutdown. */
export function writeServerInfo(config: Pick<Config, 'dataDir'>, info: ServerInfo): void {
  fs.mkdirSync(config.dataDir, { recursive: true });
  fs.writeFileSync(serverInfoPath(config), JSON.stringify(info), { mode: 0o600 });
}

export function removeServerInfo(config: Pick<Config, 'dataDir'>): void {
  try { fs.rmSync(serverInfoPath(config)); } catch { /* already gone */ }
}

/** The server serving this data directory now, if any (a stale file of a dead process is ignored). */
export function runningServer(config: Pick<Config, 'dataDir'>): ServerInfo | null {
  let info: ServerInfo;
  try { info = JSON.parse(fs.readFileSync(serverInfoPath(config), 'utf8')) as ServerInfo; } catch { return null; }
  try { process.kill(info.pid, 0); } catch (e) { if ((e as NodeJS.ErrnoException).code === 'ESRCH') return null; }
  return info;
}

const line = (k: KeyView) => [k.id, k.kind.padEnd(11), k.revokedAt ? 'revoked' : k.expiresAt && new Date(k.expiresAt) <= new Date() ? 'expired' : 'active ',
  `created ${new Date(k.createdAt).toISOString()}`, `last used ${k.lastUsedAt ? new Date(k.lastUsedAt).toISOString() : '-'}`,
  k.applicationIds.length ? `apps ${k.applicationIds.join(',')}` : '', k.label ? `"${k.label}"` : ''].filter(Boolean).join('  ');

async function viaServer(server: ServerInfo, key: string, argv: string[]): Promise<number> {
  const [, sub, id] = argv;
  const headers = { authorization: `Bearer ${key}` };
  if (sub === 'list') {
    let cursor: string | null = null;
    do {
      const res = await fetch(`${server.url}/v1/api-keys?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { headers });
      const body = await res.json() as { data: KeyView[]; nextCursor: string | null; detail?: string };
      if (!res.ok) { console.error(`lethe keys list: ${res.status} ${body.detail ?? ''}`); return 1; }
      for (const k of body.data) console.log(line(k));
      cursor = body.nextCursor;
    } while (cursor);
    return 0;
  }
  const res = await fetch(`${server.url}/v1/api-keys/${encodeURIComponent(id!)}`, { method: 'DELETE', headers });
  if (res.status === 204) { console.log(`revoked ${id}`); return 0; }
  const body = await res.json().catch(() => ({})) as { detail?: string };
  console.error(`lethe keys revoke: ${res.status} ${body.detail ?? ''}`);
  return 1;
}

async function direct(config: Config, argv: string[]): Promise<number> {
  const [, sub, id] = argv;
  // Loaded on use: the runtime plugs every domain, this one included.
  const { startRuntime } = await import('../runtime.ts');
  const { createApiKeysService } = await import('./api-keys.service.ts');
  const { default: pino } = await import('pino');
  // Logs go to stderr: stdout is the key list, one key a line, for scripts.
  const runtime = await startRuntime(config, { log: pino({ level: config.logLevel }, pino.destination(2)) });
  try {
    const keys = createApiKeysService(runtime.ctx);
    if (sub === 'list') {
      let cursor: string | undefined;
      do {
        const page = await keys.list({ limit: 500, ...(cursor ? { cursor } : {}) });
        for (const k of page.data) console.log(line(k));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      return 0;
    }
    try {
      await keys.revoke(null, id!, 'cli');
    } catch (error) {
      if (error instanceof AppError) { console.error(`lethe keys revoke: ${error.message}`); return 1; }
      throw error;
    }
    console.log(`revoked ${id}`);
    return 0;
  } finally {
    await runtime.close();
  }
}

/** `lethe keys list|revoke`, plugged in by the auth domain (auth.plugin.ts); `keys create` is in cli/main.ts. */
export const keysCli: CliCommand = {
  usage: `${KEYS_USAGE.padEnd(41)} list API keys (never the keys) / revoke one`,
  matches: (argv) => argv[0] === 'keys' && (argv[1] === 'list' || argv[1] === 'revoke'),
  async run(argv, config) {
    if (argv[1] === 'revoke' && !/^[0-9a-f-]{36}$/i.test(argv[2] ?? '')) {
      console.error('lethe keys revoke: name the key id (lethe keys list shows them)');
      return 2;
    }
    const server = config.databaseUrl ? null : runningServer(config);
    if (server) {
      const key = process.env.LETHE_API_KEY || config.adminKey;
      if (!key) {
        console.error(`lethe keys: a server (pid ${server.pid}) is serving ${config.dataDir}; set LETHE_API_KEY to an operator key to go through it`);
        return 2;
      }
      return viaServer(server, key, argv);
    }
    return direct(config, argv);
  },
};
