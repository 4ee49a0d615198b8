import { openWebhookSecret } from '../src/applications/webhook-secrets.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';

let env: TestEnv;
let api: Client;

beforeAll(async () => {
  env = await createTestEnv();
  api = client(env.app, env.operatorKey);
});
afterAll(async () => env?.close());

/** Every stored idempotent response, as text. */
async function storedResponses(): Promise<string> {
  const rows = await sql<{ body: string | null }>`SELECT response_body::text AS body FROM idempotency_keys`.execute(env.ctx.db);
  return rows.rows.map((r) => r.body ?? '').join('\n');
}

describe('secrets shown once are never kept in stored idempotent responses', () => {
  it('application creation and secret rotation: the secret is absent from the cache, a replay answers null and repeats nothing', async () => {
    const created = await api.post('/v1/applications', { name: 'partner' }, { 'idempotency-key': 'create-1' });
    expect(created.status).toBe(201);
    expect(created.body.webhookSecret).toMatch(/^whsec_/);
    const rotated = await api.post(`/v1/applications/${created.body.id}/rotate-secret`, {}, { 'idempotency-key': 'rotate-1' });
    expect(rotated.status).toBe(200);
    expect(rotated.body.webhookSecret).toMatch(/^whsec_/);
    const key = await api.post('/v1/api-keys', { kind: 'application', applicationIds: [created.body.id] }, { 'idempotency-key': 'key-1' });
    expect(key.status).toBe(201);

    const stored = await storedResponses();
    expect(stored).toContain(created.body.id); // the responses are stored…
    for (const secret of [created.body.webhookSecret, rotated.body.webhookSecret, key.body.key]) {
      // …without the secrets: the last 20 characters are random (a random part may itself hold '_')
      expect(stored).not.toContain(secret.slice(-20));
    }

    const replay = await api.post('/v1/applications', { name: 'partner' }, { 'idempotency-key': 'create-1' });
    expect(replay.status).toBe(201);
    expect(replay.body.id).toBe(created.body.id);
    expect(replay.body.webhookSecret).toBeNull();
    const replayRotate = await api.post(`/v1/applications/${created.body.id}/rotate-secret`, {}, { 'idempotency-key': 'rotate-1' });
    expect(replayRotate.status).toBe(200);
    expect(replayRotate.body.webhookSecret).toBeNull();
    // The replay rotated nothing: the secret that signs is still the one shown by the first call.
    const row = await env.ctx.db.selectFrom('applications').select('webhookSecret').where('id', '=', created.body.id).executeTakeFirstOrThrow();
    expect(openWebhookSecret(env.ctx.secrets.storedSecretsKey, created.body.id, row.webhookSecret)).toBe(rotated.body.webhookSecret);
    const apps = await api.get('/v1/applications');
    expect(apps.body.data.filter((a: { name: string }) => a.name === 'partner')).toHaveLength(1);
  });
});
