import type { Config } from '../config.ts';
import { liveHolder } from '../deployment/data-dir-lock.ts';

/**
 * The CLI talks to the running server. The embedded database (PGlite) belongs to one process,
 * so while a server serves it, every CLI command that reads or changes data asks that server
 * over HTTP instead of opening the files. The server announces itself in `<data dir>/lethe.lock`
 * (pid, start time, port, and a random local token, file mode 0600: only the account that runs
 * the server can read it); the token authenticates the CLI as an operator (audit actor
 * LOCAL_CLI_KEY_ID). On PostgreSQL the CLI works on the database directly: `runningServer` is null.
 *
 * Usage from a command:
 *   const server = runningServer(config);
 *   if (server) { const r = await server.call('POST', '/v1/backups/database'); ... }
 */
export interface ServerConnection {
  url: string;
  pid: number;
  call<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
}

export class DataDirBusy extends Error {}

export function runningServer(config: Pick<Config, 'databaseUrl' | 'dataDir'>): ServerConnection | null {
  if (config.databaseUrl) return null;
  const holder = liveHolder(config.dataDir);
  if (!holder) return null;
  if (holder.role !== 'server' || !holder.port || !holder.token) {
    throw new DataDirBusy(`the data directory ${config.dataDir} is in use by another lethe command (pid ${holder.pid}); try again once it has finished`);
  }
  const host = !holder.host || holder.host === '0.0.0.0' || holder.host === '::' ? '127.0.0.1' : holder.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${holder.port}`;
  const token = holder.token;
  return {
    url,
    pid: holder.pid,
    async call<T>(method: string, path: string, body?: unknown) {
      const r = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await r.text();
      let parsed: unknown = text;
      try { parsed = JSON.parse(text); } catch { /* not JSON */ }
      return { status: r.status, body: parsed as T };
    },
  };
}

/** The problem detail of a failed call, for the CLI's error line. */
export const problemDetail = (body: unknown): string =>
  (body as { detail?: string } | null)?.detail ?? JSON.stringify(body);
