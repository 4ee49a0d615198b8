// Browser tests of the operator console: Debian's Chromium driven by playwright-core against the
// real server (listening on a loopback port). They run in the pglite project only: the console
// has no database-specific code, and the API it calls is tested on both databases elsewhere.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import Fastify from 'fastify';
import os from 'node:os';
import { buildConsole } from '../src/console/build.ts';
import { registerConsole } from '../src/console/console.plugin.ts';
import { client, createTestEnv, TEST_DB, type Client, type TestEnv } from './helpers/runtime.ts';
import { add, createAppKey, createApplication, createCustomer, customerBody } from './helpers/fixtures.ts';
import { describeNeeding, toolPath } from './helpers/tools.ts';

// Without Chromium: listed at the end of the run with its install command; a failure under CI=true.
const CHROMIUM = toolPath('chromium') ?? '/usr/bin/chromium';
const suite = TEST_DB === 'pglite' ? describeNeeding('chromium') : describe.skip;

// Every page is captured here; LETHE_SCREENSHOTS=docs also refreshes docs/screenshots/.
const SHOT_DIR = path.resolve('test-results/console');
const DOC_DIR = path.resolve('docs/screenshots');

let env: TestEnv;
let api: Client;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let base: string;
const visited: string[] = [];
// Uncaught exceptions and CSP violations in the page: none allowed.
const pageErrors: string[] = [];
// The partner application's webhook endpoint: a real HTTP receiver on loopback.
let receiver: http.Server;
const received: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];

async function shot(name: string, fullPage = true) {
  fs.mkdirSync(SHOT_DIR, { recursive: true });
  const file = path.join(SHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  if (process.env.LETHE_SCREENSHOTS === 'docs') {
    fs.mkdirSync(DOC_DIR, { recursive: true });
    fs.copyFileSync(file, path.join(DOC_DIR, `${name}.png`));
  }
}

const heading = (name: string | RegExp) => page.getByRole('heading', { level: 1, name, exact: typeof name === 'string' });

suite(`operator console in Chromium${TEST_DB === 'pglite' ? '' : ' — skipped: runs in the pglite project only (the console is database-agnostic)'}`, () => {
  beforeAll(async () => {
    await buildConsole({ ifStale: true, quiet: true });
    env = await createTestEnv();
    receiver = http.createServer((req, res) => {
      let data = '';
      req.on('data', (c: Buffer) => { data += c.toString('utf8'); });
      req.on('end', () => { received.push({ headers: req.headers, body: data }); res.writeHead(204).end(); });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    api = client(env.app, env.operatorKey);
    await env.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(env.app.server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) visited.push(f.url()); });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error' && /Refused to|Content Security Policy/i.test(m.text())) pageErrors.push(m.text()); });
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => receiver?.close(resolve));
    await env?.close();
  });

  const tag = `c${Date.now().toString(36)}`;
  const body = customerBody(tag);
  let customerId = '';
  let appName = '';
  let appId = '';
  let casesApi = false;

  it('redirects / to the console and serves the app for deep links', async () => {
    const root = await fetch(`${base}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/console/');
    const deep = await fetch(`${base}/console/customers/00000000-0000-4000-8000-000000000000`);
    expect(deep.status).toBe(200);
    expect(deep.headers.get('content-type')).toContain('text/html');
    expect(deep.headers.get('content-security-policy')).toContain("default-src 'self'");
    // The console's fallback is only under /console/: the API keeps answering problem+json.
    const missing = await fetch(`${base}/v1/nope`);
    expect([401, 404]).toContain(missing.status);
    expect(missing.headers.get('content-type')).toContain('application/problem+json');
  });

  it('signs in with the keyboard, refuses a wrong key, keeps the key only in sessionStorage', async () => {
    const spec = await api.get('/openapi.json');
    casesApi = Boolean(spec.body.paths?.['/v1/data-deletions']);

    const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/lethe`;
    const app = await createApplication(api, `Partner ${tag}`, hook);
    appName = app.name;
    appId = app.id;
    const c = await createCustomer(api, body);
    customerId = c.id;
    await add(api, c.id, 'addresses', { city: 'Berlin', line1: `1 Street ${tag}`, country: 'DE' });
    await add(api, c.id, 'subscriptions', { plan: 'pro' });
    await add(api, c.id, 'licenses', { applicationId: app.id });
    await add(api, c.id, 'transactions', { amountMinor: 4200, currency: 'EUR', status: 'pending' });
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
    const photo = await api.put(`/v1/customers/${c.id}/profile-photo`, png, { 'content-type': 'image/png' });
    expect(photo.status, photo.raw).toBe(204);

    await page.goto(`${base}/console/`);
    await heading('Sign in to the Lethe console').waitFor();
    await shot('sign-in');
    // The key field has focus on load; Enter submits.
    await page.keyboard.type('lethe_op_not_a_real_key_000000000000');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('Unknown or revoked API key');

    await page.getByLabel('Operator API key').fill(env.operatorKey);
    await page.keyboard.press('Enter');
    await heading('Overview').waitFor();
    const stored = await page.evaluate(() => ({ session: sessionStorage.getItem('lethe.operatorKey'), local: localStorage.length, cookie: document.cookie }));
    expect(stored).toEqual({ session: env.operatorKey, local: 0, cookie: '' });

    // Overview numbers, each a link to its list.
    const customersTile = page.getByRole('link', { name: /^Customers: 1\. Open the list/ });
    await customersTile.waitFor();
    expect(await customersTile.getAttribute('href')).toBe('/console/customers');
    await page.getByRole('link', { name: /^Endpoints disabled: 0/ }).waitFor();
    if (casesApi) await page.getByRole('link', { name: /^Cases in required: 0/ }).waitFor();
    await page.getByText('Counting', { exact: false }).waitFor({ state: 'detached' }).catch(() => undefined);
    await shot('overview');
  });

  it('finds the customer by e-mail without putting it in the URL, and opens the customer page', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Customers' }).click();
    await heading('Customers').waitFor();
    await page.getByLabel('E-mail address or customer id').fill(body.email.toUpperCase());
    await page.getByRole('button', { name: 'Search' }).click();
    const row = page.getByRole('link', { name: body.displayName });
    await row.waitFor();
    expect(page.url()).not.toContain(body.email.split('@')[0]);
    await shot('customers');

    // Nothing found reads as an empty state, not an error.
    await page.getByLabel('E-mail address or customer id').fill(`nobody.${tag}@example.com`);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByText('No living customer matches this search.').waitFor();
    await page.getByLabel('E-mail address or customer id').fill(customerId);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('link', { name: body.displayName }).click();

    await heading(body.displayName).waitFor();
    expect(page.url()).toBe(`${base}/console/customers/${customerId}`);
    await page.getByRole('heading', { name: /Transactions \(1\)/ }).waitFor();
    const img = page.getByRole('img', { name: 'Profile photo' });
    await img.waitFor();
    await expect.poll(() => img.evaluate((el) => (el as HTMLImageElement).naturalWidth)).toBe(1);
    await page.getByRole('heading', { name: /Licenses \(1\)/ }).waitFor();
    await page.getByRole('link', { name: appName }).first().waitFor();
    await shot('customer');
  });

  it('legal hold blocks the deletion; the pending transaction blocks it; typing the e-mail enables it', async () => {
    // Legal hold on: the preview shows it as a blocker.
    const hold = page.getByRole('switch', { name: 'Legal hold' });
    expect(await hold.getAttribute('aria-checked')).toBe('false');
    await hold.click();
    await page.locator('[role=switch][aria-checked=true]').waitFor();
    await expect.poll(async () => (await api.get(`/v1/customers/${customerId}`)).body.legalHold).toBe(true);
    await page.getByRole('button', { name: 'Delete customer…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('list', { name: 'Blockers' }).waitFor();
    expect(await dialog.getByRole('list', { name: 'Blockers' }).textContent()).toMatch(/Legal hold/i);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await hold.click();
    await page.locator('[role=switch][aria-checked=false]').waitFor();
    await expect.poll(async () => (await api.get(`/v1/customers/${customerId}`)).body.legalHold).toBe(false);

    await page.getByRole('button', { name: 'Delete customer…' }).click();
    const blockers = dialog.getByRole('list', { name: 'Blockers' });
    await blockers.waitFor();
    const text = await blockers.textContent();
    expect(text).toMatch(/Pending transactions/i);
    expect(text).not.toMatch(/Legal hold/i);
    // What the deletion does: counts, and the application that will be told.
    await dialog.getByRole('list', { name: 'Applications to be told' }).getByText(appName).waitFor();
    expect(await dialog.getByRole('heading', { name: /^Redacted/ }).isVisible()).toBe(true);
    await dialog.getByText('The profile photo file').waitFor();

    // Back up first: the data-subject export downloads as a file named by id only.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      dialog.getByRole('button', { name: 'Download export (JSON)' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe(`customer-${customerId}.json`);
    const exported = fs.readFileSync(await download.path(), 'utf8');
    expect(exported).toContain(body.email);

    const confirm = dialog.getByLabel(/Type the customer's e-mail address/);
    const final = dialog.getByRole('button', { name: 'Delete permanently' });
    expect(await final.isDisabled()).toBe(true);
    expect(await confirm.isDisabled()).toBe(true);
    await shot('delete-blocked', false);

    // Settle it from the dialog.
    await dialog.getByRole('button', { name: /Mark transaction .* succeeded/ }).click();
    await dialog.getByText('Nothing blocks this deletion.').waitFor();
    const tx = await api.get(`/v1/customers/${customerId}/transactions`);
    expect(tx.body.data[0].status).toBe('succeeded');

    await confirm.fill(`wrong.${body.email}`);
    expect(await final.isDisabled()).toBe(true);
    await confirm.fill(body.email);
    expect(await final.isEnabled()).toBe(true);
    await shot('delete-confirm', false);
    // The customer still exists until the final button.
    expect((await api.get(`/v1/customers/${customerId}`)).status).toBe(200);

    await final.click();
    await heading('Deletion receipt').waitFor();
    expect(page.url()).toBe(`${base}/console/deletions/${customerId}`);
    expect((await api.get(`/v1/customers/${customerId}`)).status).toBe(404);
    await page.getByText(/Verified: GET \/v1\/customers\/.* now answers 404/).waitFor();
    const receipt = page.getByRole('region', { name: 'Receipt' });
    await receipt.getByRole('link', { name: appName }).waitFor();
    expect(await receipt.textContent()).not.toContain(body.email);
    if (casesApi) {
      const cases = page.getByRole('region', { name: 'Deletion cases' });
      await cases.getByText('required', { exact: true }).waitFor();
      await cases.getByText('customer_deleted', { exact: true }).waitFor();
    }
    await shot('receipt');
  });

  it('shows the case move to confirmed after the application confirms through its API', async () => {
    if (!casesApi) {
      await page.goto(`${base}/console/cases`);
      await page.getByText('not available on this server yet').waitFor();
      return;
    }
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Deletion cases' }).click();
    await heading('Deletion cases').waitFor();
    await page.getByLabel('State').selectOption('required');
    expect(page.url()).toContain('status=required');
    await page.getByRole('table', { name: 'Deletion cases' }).getByText(customerId).waitFor();
    await shot('cases');
    // The customer filter takes an id only: an e-mail is refused before it can reach the URL.
    await page.getByLabel('Customer id').fill(body.email);
    await page.getByRole('button', { name: 'Filter', exact: true }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('Enter a customer id');
    expect(page.url()).not.toContain(body.email.split('@')[0]);
    await page.getByLabel('Customer id').fill(customerId);
    await page.getByRole('button', { name: 'Filter', exact: true }).click();
    await expect.poll(() => page.url()).toContain(`subscriptionId=${customerId}`);
    await page.getByRole('table', { name: 'Deletion cases' }).getByText(customerId).waitFor();

    // The deletion's webhook goes out; its delivery shows on the case's timeline.
    const dispatchOnce = () => env.services.port('webhookDispatcher').dispatchOnce();
    await dispatchOnce();
    expect(received.map((r) => JSON.parse(r.body).data)).toContainEqual(expect.objectContaining({ subscriptionId: customerId, applicationId: appId }));
    await page.getByRole('link', { name: /^Case required for customer/ }).click();
    await heading('Deletion case').waitFor();
    await page.getByRole('table', { name: 'Delivery attempts' }).getByText('delivered').waitFor();
    await page.getByRole('list', { name: 'Case timeline' }).getByText(/Notification delivered/).waitFor();
    await page.goBack();
    await heading('Deletion cases').waitFor();

    // Weeks later, still unconfirmed: the case is overdue on the overview, and the number links to it.
    env.clock.advance(40 * 24 * 3600 * 1000);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click();
    await page.getByRole('link', { name: /^Overdue cases: 1\. Open the list/ }).click();
    await heading('Deletion cases: overdue').waitFor();
    await page.getByRole('table', { name: 'Deletion cases' }).getByText('overdue', { exact: true }).waitFor();
    await page.getByRole('table', { name: 'Deletion cases' }).getByText(customerId).waitFor();
    await page.getByRole('button', { name: 'Clear filters' }).click();

    const appKey = await createAppKey(api, [appId]);
    const partner = client(env.app, appKey);
    const confirmed = await partner.post('/v1/data-deletions/confirmations', { subscriptionId: customerId });
    expect(confirmed.status, JSON.stringify(confirmed.body)).toBe(200);

    await page.getByLabel('State').selectOption('confirmed');
    expect(page.url()).toContain('status=confirmed');
    await page.getByRole('table', { name: 'Deletion cases' }).getByText(customerId).waitFor();
    await page.getByRole('link', { name: /^Case confirmed for customer/ }).click();
    await heading('Deletion case').waitFor();
    const timeline = page.getByRole('list', { name: 'Case timeline' });
    await timeline.getByText('Confirmed by the application').waitFor();
    expect(await timeline.textContent()).toContain(confirmed.body.keyId);
    expect(await timeline.textContent()).toMatch(/Deletion required \(customer_deleted\)/);
    await shot('case');

    // A case in its grace period: the last license ended, the grace end is on the timeline.
    const other = await createCustomer(api, customerBody(`${tag}g`));
    const lic = await add(api, other.id, 'licenses', { applicationId: appId });
    expect((await api.post(`/v1/licenses/${lic.id}/cancel`)).status).toBe(200);
    await page.goto(`${base}/console/cases?status=grace`);
    await page.getByRole('link', { name: /^Case grace for customer/ }).click();
    await heading('Deletion case').waitFor();
    await page.getByRole('list', { name: 'Case timeline' }).getByText('Grace period ends').waitFor();
    expect(page.url()).not.toContain(other.email);
  });

  it('creates an application, edits its webhook, disables it, rotates its secret', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Applications' }).click();
    await heading('Applications').waitFor();
    // A bad URL comes back as a readable error, not raw JSON.
    await page.getByLabel('Name').fill(`Console app ${tag}`);
    await page.getByLabel(/Webhook URL/).fill('ftp://example.com/hook');
    await page.getByRole('button', { name: 'Create application' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).not.toContain('{');
    await page.getByLabel(/Webhook URL/).fill('http://127.0.0.1:9/hook');
    await page.getByRole('button', { name: 'Create application' }).click();
    await page.getByRole('status').getByLabel('Webhook signing secret').waitFor();
    expect(await page.getByLabel('Webhook signing secret').textContent()).toMatch(/^whsec_/);
    await shot('applications');

    await page.getByRole('status').getByRole('link', { name: `Console app ${tag}` }).click();
    await heading(`Console app ${tag}`).waitFor();
    const spec = (await api.get('/openapi.json')).body;
    if (spec.paths?.['/v1/applications/{id}']?.patch) {
      await page.getByLabel('Webhook URL').fill('http://127.0.0.1:9/hook2');
      await page.getByRole('button', { name: 'Save URL' }).click();
      await page.getByRole('button', { name: 'Disable endpoint' }).click();
      await page.getByRole('button', { name: 'Enable endpoint' }).waitFor();
      const apps = await api.get('/v1/applications?limit=500');
      const a = apps.body.data.find((x: { name: string }) => x.name === `Console app ${tag}`);
      expect(a).toMatchObject({ webhookUrl: 'http://127.0.0.1:9/hook2', enabled: false });
    }
    if (spec.paths?.['/v1/applications/{id}/rotate-secret']) {
      page.once('dialog', (d) => void d.accept());
      await page.getByRole('button', { name: 'Rotate secret' }).click();
      await page.getByLabel('New webhook signing secret').waitFor();
    }
    await page.getByRole('heading', { name: 'Deliveries' }).waitFor();
    await shot('application');
  });

  it('pages through the audit log and shows the chain verification', async () => {
    // Enough audited events for a second page (each issued key is audited).
    for (let i = 0; i < 55; i++) await api.post('/v1/api-keys', { kind: 'operator' });
    // Keyboard: a focused navigation link opens its page with Enter, and focus lands on the page heading.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log' }).focus();
    await page.keyboard.press('Enter');
    await heading('Audit log').waitFor();
    await expect.poll(() => page.evaluate(() => document.activeElement?.tagName)).toBe('H1');
    expect(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log' }).getAttribute('aria-current')).toBe('page');
    await page.getByText(/The hash chain is intact: \d+ event\(s\) verified/).waitFor();
    await page.getByRole('table', { name: 'Audit events' }).waitFor();
    await shot('audit');
    await page.getByRole('button', { name: 'Next →' }).click();
    await page.getByText('Page 2, oldest first.').waitFor();
    await page.getByRole('button', { name: '← Previous' }).click();
    await page.getByText('Page 1, oldest first.').waitFor();
  });

  it('edits settings and the redaction policy', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    await heading('Settings').waitFor();
    const spec = (await api.get('/openapi.json')).body;
    if (!spec.paths?.['/v1/settings']) {
      await page.getByText('not available on this server yet').waitFor();
      return;
    }
    await page.getByLabel('Grace period days').fill('30');
    await page.getByLabel('Action for customer.organization').selectOption('mask');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Settings saved.').waitFor();
    const s = await api.get('/v1/settings');
    expect(s.body.gracePeriodDays).toBe(30);
    expect(s.body.redactionPolicy['customer.organization']).toBe('mask');
    // An invalid value is refused with the API's message.
    await page.getByLabel('Notification time zone').fill('Mars/Olympus');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/time zone/i);
    await shot('settings');
  });

  it('downloads a dataset export with the key in a header, deleted customers pseudonymized', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Exports' }).click();
    await heading('Exports').waitFor();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download Customers as CSV' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('customers.csv');
    const csv = fs.readFileSync(await download.path(), 'utf8');
    expect(csv.split('\n')[0]).toContain('email');
    expect(csv).not.toContain(body.email);
    expect(csv).not.toContain(customerId);
  });

  it('reads "not available" where the server lacks an API, and keeps the rest of the page working', async () => {
    // An older server without the cases API: its 404 problem for an unknown route.
    const noRoute = async (route: import('playwright-core').Route) => route.fulfill({
      status: 404, contentType: 'application/problem+json',
      body: JSON.stringify({ type: 'about:blank', title: 'Not Found', status: 404, code: 'not_found', detail: 'No route GET /v1/data-deletions', requestId: 'x' }),
    });
    await page.route('**/v1/data-deletions*', noRoute);
    try {
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click();
      await page.getByText('Deletion cases is not available on this server yet').waitFor();
      await page.getByRole('link', { name: /^Customers: \d+/ }).waitFor();
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Deletion cases' }).click();
      await page.getByText('not available on this server yet').waitFor();
      expect(await page.getByRole('alert').count()).toBe(0);
    } finally {
      await page.unroute('**/v1/data-deletions*', noRoute);
    }
  });

  it('signs out, forgets the key, and never put personal data in a URL', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await heading('Sign in to the Lethe console').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('lethe.operatorKey'))).toBeNull();
    expect(visited.length).toBeGreaterThan(0);
    expect(pageErrors).toEqual([]);
    const history = await page.evaluate(() => window.location.href);
    for (const url of [...visited, history]) {
      expect(url).not.toContain(encodeURIComponent(body.email));
      expect(url).not.toContain(body.email);
      expect(url).not.toContain(body.lastName);
    }
  });
});

describe('console static serving (no browser, no database)', () => {
  it('serves files and the SPA fallback, never a file outside its root, and says when it is not built', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-console-'));
    const app = Fastify();
    await registerConsole(app, { root });
    try {
      const unbuilt = await app.inject({ url: '/console/' });
      expect(unbuilt.statusCode).toBe(503);
      expect(unbuilt.body).toContain('not built');

      fs.mkdirSync(path.join(root, 'assets'));
      fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>t</title>');
      fs.writeFileSync(path.join(root, 'assets', 'app-1234.js'), 'console.log(1)');
      fs.writeFileSync(path.join(os.tmpdir(), 'lethe-console-secret.txt'), 'TOP-SECRET-CONTENT-42');
      const index = await app.inject({ url: '/console' });
      expect(index.statusCode).toBe(200);
      expect(index.headers['cache-control']).toBe('no-cache');
      const asset = await app.inject({ url: '/console/assets/app-1234.js' });
      expect(asset.statusCode).toBe(200);
      expect(asset.headers['cache-control']).toContain('immutable');
      expect(asset.headers['content-type']).toContain('javascript');
      for (const url of ['/console/customers/123', '/console/assets/missing.js']) {
        const r = await app.inject({ url });
        expect(r.statusCode, url).toBe(200);
        expect(r.body, url).toContain('<title>t</title>');
      }
      for (const url of ['/console/../lethe-console-secret.txt', '/console/%2e%2e/lethe-console-secret.txt', '/console/..%2flethe-console-secret.txt']) {
        const r = await app.inject({ url });
        expect(r.body, url).not.toContain('TOP-SECRET-CONTENT-42');
      }
      const root302 = await app.inject({ url: '/' });
      expect(root302.statusCode).toBe(302);
      expect(root302.headers.location).toBe('/console/');
    } finally {
      await app.close();
      fs.rmSync(root, { recursive: true, force: true });
      fs.rmSync(path.join(os.tmpdir(), 'lethe-console-secret.txt'), { force: true });
    }
  });
});
