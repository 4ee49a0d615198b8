// Console pages for APIs built by the partner/operator issues (api-keys list and revoke, removing
// one record, the confirmation history with outcomes). They need those APIs:
//   GET/DELETE /v1/api-keys[/{id}], DELETE /v1/customers/{id}/{collection}/{itemId},
//   GET /v1/data-deletions/confirmations (with `outcome`).
// On a branch without them these tests fail (by design: they are the contract the console was built to).
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildConsole } from '../src/console/build.ts';
import { client, createTestEnv, TEST_DB, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createAppKey, createApplication, createCustomer } from './helpers/fixtures.ts';

const CHROMIUM = process.env.LETHE_CHROMIUM ?? '/usr/bin/chromium';
if (process.env.CI === 'true' && !fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}`);

describe.skipIf(TEST_DB !== 'pglite')('console: needs operator/partner APIs', () => {
  let env: TestEnv;
  let api: Client;
  let browser: Browser;
  let page: Page;
  let base: string;

  beforeAll(async () => {
    await buildConsole({ ifStale: true, quiet: true });
    env = await createTestEnv();
    api = client(env.app, env.operatorKey);
    await env.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(env.app.server.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await page.goto(`${base}/console/`);
    await page.getByLabel('Operator API key').fill(env.operatorKey);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
  });
  afterAll(async () => {
    await browser?.close();
    await env?.close();
  });

  it('keys page: lists keys with label and state, revokes one after a confirmation', async () => {
    const created = await api.post('/v1/api-keys', { kind: 'operator' });
    expect(created.status).toBe(201);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API keys' }).click();
    await page.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
    const table = page.getByRole('table', { name: 'API keys' });
    const row = table.getByRole('row').filter({ has: page.getByTitle(created.body.id) });
    await row.waitFor();
    expect(await row.textContent()).toMatch(/active/);
    expect(await table.textContent()).not.toContain(created.body.key);
    await row.getByRole('button', { name: 'Revoke…' }).click();
    const dialog = page.getByRole('dialog', { name: /^Revoke the operator key/ });
    await dialog.waitFor();
    expect((await client(env.app, created.body.key).get('/v1/customers')).status).toBe(200);
    await dialog.getByRole('button', { name: 'Revoke key' }).click();
    await row.getByText('revoked').waitFor();
    expect((await client(env.app, created.body.key).get('/v1/customers')).status).toBe(401);
  });

  it('keys page: edits a key\'s label in place (saved through the API, shown after a reload)', async () => {
    const created = await api.post('/v1/api-keys', { kind: 'operator', label: 'old name' });
    await page.goto(`${base}/console/keys`);
    await page.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
    const row = page.getByRole('table', { name: 'API keys' }).getByRole('row').filter({ has: page.getByTitle(created.body.id) });
    await row.getByText('old name').waitFor();
    await row.getByRole('button', { name: 'Edit label' }).click();
    const field = row.getByLabel('Label', { exact: true });
    expect(await field.inputValue()).toBe('old name');
    // Escape cancels without saving.
    await field.fill('not saved');
    await field.press('Escape');
    await row.getByText('old name').waitFor();
    await row.getByRole('button', { name: 'Edit label' }).click();
    await row.getByLabel('Label', { exact: true }).fill('billing service');
    await row.getByRole('button', { name: 'Save label' }).click();
    await row.getByText('billing service').waitFor();
    expect((await api.get(`/v1/api-keys/${created.body.id}`)).body.label).toBe('billing service');
    await page.reload();
    await page.getByRole('table', { name: 'API keys' }).getByRole('row').filter({ has: page.getByTitle(created.body.id) }).getByText('billing service').waitFor();
    const audit = await api.get(`/v1/audit-events?subjectId=${created.body.id}`);
    expect(audit.body.data.map((e: { type: string }) => e.type)).toContain('api_key.labelled');
    expect(JSON.stringify(audit.body)).not.toContain('billing service');
  });

  it('removes one address and one card after a confirmation; the rest of the customer stays', async () => {
    const c = await createCustomer(api);
    const address = await add(api, c.id, 'addresses', { line1: '1 Keep Street', city: 'Berlin', country: 'DE' });
    const gone = await add(api, c.id, 'addresses', { line1: '2 Remove Road', city: 'Paris', country: 'FR' });
    const card = await add(api, c.id, 'payment-methods', { brand: 'visa', last4: '4242', token: 'tok_remove_me' });
    await page.goto(`${base}/console/customers/${c.id}`);
    const addresses = page.getByRole('region', { name: /Addresses/ });
    const row = addresses.getByRole('row').filter({ hasText: '2 Remove Road' });
    await row.getByRole('button', { name: 'Remove…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Remove 2 Remove Road, Paris, FR?' });
    await dialog.getByText(/redacted now, whatever the automatic-deletion setting/).waitFor();
    await dialog.getByRole('button', { name: 'Remove address' }).click();
    await page.getByRole('heading', { name: /Addresses \(1\)/ }).waitFor();
    expect((await api.get(`/v1/customers/${c.id}/addresses/${gone.id}`)).status).toBe(404);
    expect((await api.get(`/v1/customers/${c.id}/addresses/${address.id}`)).status).toBe(200);

    const cards = page.getByRole('region', { name: /Payment methods/ });
    await cards.getByRole('button', { name: 'Remove…' }).click();
    await page.getByRole('dialog', { name: 'Remove visa ending 4242?' }).getByRole('button', { name: 'Remove card' }).click();
    await page.getByRole('heading', { name: /Payment methods \(0\)/ }).waitFor();
    expect((await api.get(`/v1/customers/${c.id}/payment-methods/${card.id}`)).status).toBe(404);
  });

  it("an application's page shows its confirmation history with outcomes", async () => {
    const app = await createApplication(api, 'History partner');
    const key = await createAppKey(api, [app.id]);
    const partner = client(env.app, key);
    const outcomes = ['deleted', 'no_data_held'];
    for (const outcome of outcomes) {
      const c = await createCustomer(api);
      await add(api, c.id, 'licenses', { applicationId: app.id });
      expect((await api.del(`/v1/customers/${c.id}`)).status).toBe(204);
      expect((await partner.post('/v1/data-deletions/confirmations', { subscriptionId: c.id, outcome })).status).toBe(200);
    }
    await page.goto(`${base}/console/applications/${app.id}`);
    const history = page.getByRole('table', { name: 'Confirmations' });
    await history.getByText('no_data_held').waitFor();
    await history.getByText('deleted', { exact: true }).waitFor();
    expect(await history.getByRole('row').count()).toBe(3);
  });
});
