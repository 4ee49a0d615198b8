// packages/client's types are generated from the served OpenAPI document; this fails when the
// committed file drifts from it. Fix: `npm run generate:client` (and commit packages/client/src/schema.ts).
import fs from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLIENT_SCHEMA, clientTypesFor } from '../scripts/generate-client.ts';
import { client, createTestEnv, type TestEnv } from './helpers/runtime.ts';

let env: TestEnv;
beforeAll(async () => { env = await createTestEnv(); });
afterAll(async () => env?.close());

it('packages/client/src/schema.ts matches the served /openapi.json (regenerate: npm run generate:client)', async () => {
  const doc = (await client(env.app, null).get('/openapi.json')).body;
  const expected = await clientTypesFor(doc);
  const committed = fs.readFileSync(CLIENT_SCHEMA, 'utf8');
  // Compared whole; the message names the command rather than printing 6,000 lines of diff.
  expect(committed === expected, 'packages/client/src/schema.ts is stale: run `npm run generate:client` and commit it').toBe(true);
  expect(committed).toContain('confirmDataDeletion');
});
