// Which PostgreSQL the postgres project runs on (test/helpers/pg-server.ts): the fallback order,
// with injected probes, and one real start and stop of the embedded PostgreSQL from npm.
import fs from 'node:fs';
import net from 'node:net';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { choosePgServer, probePg, serverVersion, startEmbeddedPg, SYSTEM_PG_URL, type ChooserDeps, type PgServer } from './helpers/pg-server.ts';
import { PG_ADMIN_URL, TEST_DB } from './helpers/runtime.ts';

/** Deps that record what was asked: a probe answering per URL, a fake embedded start. */
function deps(env: Record<string, string>, answering: boolean) {
  const calls: string[] = [];
  const embedded: PgServer = { kind: 'embedded', url: 'postgres://postgres:x@127.0.0.1:40001/postgres', stop: async () => {} };
  const d: ChooserDeps = {
    env,
    probe: async (url) => { calls.push(`probe ${url}`); return answering ? null : 'connect ECONNREFUSED 127.0.0.1:5432'; },
    startEmbedded: async () => { calls.push('start embedded'); return embedded; },
  };
  return { d, calls };
}

describe.runIf(TEST_DB === 'pglite')('choosing the server (pure, once)', () => {
  it('1. LETHE_TEST_PG=embedded starts the embedded server even with a URL given and 5432 answering', async () => {
    const { d, calls } = deps({ LETHE_TEST_PG: 'embedded', LETHE_TEST_PG_URL: 'postgres://u@db:5433/postgres' }, true);
    const r = await choosePgServer(d);
    expect(r.server.kind).toBe('embedded');
    expect(r.note).toBe('forced by LETHE_TEST_PG=embedded');
    expect(calls).toEqual(['start embedded']);
  });

  it('2. LETHE_TEST_PG_URL is used as given, without probing 5432 or starting anything', async () => {
    const { d, calls } = deps({ LETHE_TEST_PG_URL: 'postgres://u@db:5433/postgres' }, true);
    const r = await choosePgServer(d);
    expect(r.server).toMatchObject({ kind: 'url', url: 'postgres://u@db:5433/postgres' });
    expect(calls).toEqual([]);
  });

  it('3. else a server answering on 127.0.0.1:5432', async () => {
    const { d, calls } = deps({}, true);
    const r = await choosePgServer(d);
    expect(r.server).toMatchObject({ kind: 'system', url: SYSTEM_PG_URL });
    expect(calls).toEqual([`probe ${SYSTEM_PG_URL}`]);
  });

  it('4. else the embedded server, saying why', async () => {
    const { d, calls } = deps({}, false);
    const r = await choosePgServer(d);
    expect(r.server.kind).toBe('embedded');
    expect(r.note).toBe('nothing usable on 127.0.0.1:5432 (connect ECONNREFUSED 127.0.0.1:5432)');
    expect(calls).toEqual([`probe ${SYSTEM_PG_URL}`, 'start embedded']);
  });

  it('LETHE_TEST_PG=system never falls back to the embedded server, and ignores the URL', async () => {
    const down = deps({ LETHE_TEST_PG: 'system', LETHE_TEST_PG_URL: 'postgres://u@db:5433/postgres' }, false);
    await expect(choosePgServer(down.d)).rejects.toThrow(/LETHE_TEST_PG=system but no PostgreSQL usable at .*ECONNREFUSED/);
    expect(down.calls).toEqual([`probe ${SYSTEM_PG_URL}`]);
    const up = deps({ LETHE_TEST_PG: 'system' }, true);
    expect((await choosePgServer(up.d)).server.kind).toBe('system');
  });

  it('refuses an unknown LETHE_TEST_PG instead of guessing', async () => {
    await expect(choosePgServer(deps({ LETHE_TEST_PG: 'pg18' }, true).d)).rejects.toThrow(/must be "embedded", "system" or unset/);
  });

  it('the real probe reports a closed port as not answering', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise((r) => srv.close(r));
    expect(await probePg(`postgres://postgres@127.0.0.1:${port}/postgres`, 1000)).toMatch(/ECONNREFUSED/);
  });

  it('starts a real embedded PostgreSQL 18 in a temp dir on a free port, and removes it all on stop', async () => {
    const server = await startEmbeddedPg();
    const url = new URL(server.url);
    let dir = '';
    try {
      expect(server.kind).toBe('embedded');
      expect(url.port).not.toBe('5432');
      expect((await serverVersion(server.url)).major).toBeGreaterThanOrEqual(18);
      const c = new pg.Client({ connectionString: server.url });
      await c.connect();
      dir = (await c.query<{ d: string }>(`SELECT current_setting('data_directory') AS d`)).rows[0]!.d;
      await c.query('CREATE DATABASE lethe_probe');
      await c.end();
      expect(fs.existsSync(dir)).toBe(true);
    } finally {
      await server.stop();
    }
    expect(fs.existsSync(dir)).toBe(false);
    expect(await probePg(server.url, 1000)).toMatch(/ECONNREFUSED/);
  });
});

describe.runIf(TEST_DB === 'postgres')('the server this run chose', () => {
  it('is the one the helpers create databases on', async () => {
    const chosen = inject('lethePg');
    expect(PG_ADMIN_URL).toBe(chosen.url);
    expect(await serverVersion(PG_ADMIN_URL)).toMatchObject({ major: chosen.major });
    if (process.env.LETHE_TEST_PG === 'embedded') expect(chosen).toMatchObject({ kind: 'embedded', major: 18 });
  });
});
