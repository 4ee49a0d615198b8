// Vitest globalSetup of the postgres project: picks the PostgreSQL server once for the whole run
// (order in pg-server.ts), prints one line naming it, hands its URL and version to the test files
// (inject('lethePg')), and stops an embedded server at the end of the run.
import type { TestProject } from 'vitest/node';
import { choosePgServer, describeServer, probePg, serverVersion, startEmbeddedPg } from './pg-server.ts';

export interface LethePg { kind: 'url' | 'system' | 'embedded'; url: string; version: string; major: number }

declare module 'vitest' {
  export interface ProvidedContext { lethePg: LethePg }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { server, note } = await choosePgServer({ env: process.env, probe: (u) => probePg(u), startEmbedded: () => startEmbeddedPg() });
  try {
    const { version, major } = await serverVersion(server.url);
    console.log(describeServer(server, version, note));
    project.provide('lethePg', { kind: server.kind, url: server.url, version, major });
  } catch (e) {
    await server.stop();
    const where = server.kind === 'url' ? 'the server LETHE_TEST_PG_URL names' : `the ${server.kind} PostgreSQL`;
    throw new Error(`${where} does not answer (${(e as Error).message}); unset LETHE_TEST_PG_URL to fall back to 127.0.0.1:5432 or the embedded server`);
  }
  return async () => { await server.stop(); };
}
