import type { Config } from '../config.ts';
import { AppError } from '../http/errors.ts';
import { problemDetail, runningServer, type ServerConnection } from '../cli/server-client.ts';
import type { CliCommand } from '../plugin/registry.ts';
import type { KeyView } from './api-keys.service.ts';

/**
 * `lethe keys list|revoke <id>`. PGlite admits one process: while a server serves the embedded
 * database, the CLI goes through that server's HTTP API with the server's local CLI token
 * (src/cli/server-client.ts). Otherwise (no server, or DATABASE_URL: any number of processes)
 * it opens the database itself.
 */
export const KEYS_USAGE = 'lethe keys list | keys revoke <id>';

const line = (k: KeyView) => [k.id, k.kind.padEnd(11), k.revokedAt ? 'revoked' : k.expiresAt && new Date(k.expiresAt) <= new Date() ? 'expired' : 'active ',
  `created ${new Date(k.createdAt).toISOString()}`, `last used ${k.lastUsedAt ? new Date(k.lastUsedAt).toISOString() : '-'}`,
  k.applicationIds.length ? `apps ${k.applicationIds.join(',')}` : '', k.label ? `"${k.label}"` : ''].filter(Boolean).join('  ');

async function viaServer(server: ServerConnection, argv: string[]): Promise<number> {
  const [, sub, id] = argv;
  if (sub === 'list') {
    let cursor: string | null = null;
    do {
      const res: { status: number; body: { data: KeyView[]; nextCursor: string | null } } =
        await server.call('GET', `/v1/api-keys?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      if (res.status !== 200) { console.error(`lethe keys list: ${res.status} ${problemDetail(res.body)}`); return 1; }
      for (const k of res.body.data) console.log(line(k));
      cursor = res.body.nextCursor;
    } while (cursor);
    return 0;
  }
  const res = await server.call('DELETE', `/v1/api-keys/${encodeURIComponent(id!)}`);
  if (res.status === 204) { console.log(`revoked ${id}`); return 0; }
  console.error(`lethe keys revoke: ${res.status} ${problemDetail(res.body)}`);
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
    // While a server serves the embedded database, go through it (src/cli/server-client.ts).
    const server = runningServer(config);
    if (server) return viaServer(server, argv);
    return direct(config, argv);
  },
};
