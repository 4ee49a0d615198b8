// Browser tests of the operator console: Debian's Chromium driven by playwright-core against the
// real server (listening on a loopback port). They run in the pglite project only: the console
// has no database-specific code, and the API it calls is tested on both databases elsewhere.
import crypto from 'node:crypto';
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
const failingReceived: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];

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
    // Each tile's accessible name is its visible text (WCAG 2.5.3).
    const customersTile = page.getByRole('link', { name: '1 Customers', exact: true });
    await customersTile.waitFor();
    expect(await customersTile.getAttribute('href')).toBe('/console/customers');
    await page.getByRole('link', { name: '0 Endpoints disabled', exact: true }).waitFor();
    if (casesApi) await page.getByRole('link', { name: '0 Cases in required', exact: true }).waitFor();
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
    await page.getByText('No living customer has this e-mail address or id.').waitFor();
    // A name is not searchable, and the page says so (and what is).
    await page.getByLabel('E-mail address or customer id').fill(body.lastName);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByText(/is neither an e-mail address nor a customer id/).waitFor();
    expect(await page.locator('#search-help').textContent()).toMatch(/whole e-mail address.*customer id/);
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
    // Legal hold on, keyboard only: the styled confirmation asks for a reason (audited) and a note (activity log only).
    await page.getByRole('button', { name: 'Place legal hold…' }).focus();
    await page.keyboard.press('Enter');
    const confirmHold = page.getByRole('dialog', { name: 'Place a legal hold?' });
    await confirmHold.waitFor();
    const reason = confirmHold.getByLabel(/Reason/);
    await expect.poll(() => reason.evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await confirmHold.getByRole('button', { name: 'Place legal hold' }).isDisabled()).toBe(true);
    await reason.selectOption('litigation'); // a <select> by keyboard: the value changes like this
    await page.keyboard.press('Tab');
    await page.keyboard.type('Counsel Jane Roe, matter 77');
    await page.keyboard.press('Tab');
    await expect.poll(() => page.evaluate(() => document.activeElement?.textContent)).toBe('Place legal hold');
    await shot('confirm-legal-hold', false);
    await page.keyboard.press('Enter');
    await confirmHold.waitFor({ state: 'hidden' });
    await expect.poll(async () => (await api.get(`/v1/customers/${customerId}`)).body.legalHold).toBe(true);
    // Focus returns to the button that opened the confirmation (now "Lift").
    await page.getByRole('button', { name: 'Lift legal hold…' }).waitFor();
    const held = (await api.get('/v1/audit-events?type=customer.legal_hold_placed&order=desc')).body.data[0];
    expect(held.data.reason).toBe('litigation');
    expect(JSON.stringify(held)).not.toContain('Jane');
    const activity = (await api.get(`/v1/customers/${customerId}/activity`)).body.data;
    expect(JSON.stringify(activity)).toContain('Counsel Jane Roe, matter 77');

    await page.getByRole('button', { name: 'Delete customer…' }).click();
    const dialog = page.getByRole('dialog', { name: /^Delete / });
    await dialog.getByRole('list', { name: 'Blockers' }).waitFor();
    expect(await dialog.getByRole('list', { name: 'Blockers' }).textContent()).toMatch(/Legal hold/i);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    // Lifting it: Escape cancels the confirmation without a change; then it is lifted with a reason.
    await page.getByRole('button', { name: 'Lift legal hold…' }).click();
    const lift = page.getByRole('dialog', { name: 'Lift the legal hold?' });
    await lift.waitFor();
    await page.keyboard.press('Escape');
    await lift.waitFor({ state: 'hidden' });
    expect((await api.get(`/v1/customers/${customerId}`)).body.legalHold).toBe(true);
    await page.getByRole('button', { name: 'Lift legal hold…' }).click();
    await lift.getByLabel(/Reason/).selectOption('matter_closed');
    await lift.getByRole('button', { name: 'Lift legal hold' }).click();
    await expect.poll(async () => (await api.get(`/v1/customers/${customerId}`)).body.legalHold).toBe(false);

    // The delete dialog, keyboard only: the button opens it, focus is inside, the summary and
    // the confirmation come first (no scrolling), developer text is gone.
    await page.getByRole('button', { name: 'Delete customer…' }).focus();
    await page.keyboard.press('Enter');
    const blockers = dialog.getByRole('list', { name: 'Blockers' });
    await blockers.waitFor();
    await expect.poll(() => dialog.evaluate((d) => d.contains(document.activeElement))).toBe(true);
    const text = await blockers.textContent();
    expect(text).toMatch(/still pending/i);
    expect(text).not.toMatch(/Legal hold/i);
    expect(await dialog.textContent()).not.toMatch(/\/v1\/|PATCH|customer\.firstName/);
    // Money with its currency: 4200 minor units of EUR is €42.00.
    expect(await dialog.getByRole('list', { name: 'Pending transactions' }).textContent()).toContain('€42.00');
    const dialogBox = (await dialog.boundingBox())!;
    const confirmBox = (await dialog.getByLabel(/Type the customer's e-mail address/).boundingBox())!;
    expect(confirmBox.y + confirmBox.height).toBeLessThan(dialogBox.y + dialogBox.height);
    // What the deletion does: counts, and the application that will be told (details on demand).
    await dialog.getByText(/Applications to be told/).click();
    await dialog.getByRole('list', { name: 'Applications to be told' }).getByText(appName).waitFor();
    await dialog.getByText(/^Deleted \(/).click();
    await dialog.getByText('The profile photo file').waitFor();

    // Back up first: the data-subject export downloads as a file named by id only.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      dialog.getByRole('button', { name: 'download everything held about the customer' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe(`customer-${customerId}.json`);
    const exported = fs.readFileSync(await download.path(), 'utf8');
    expect(exported).toContain(body.email);

    const confirm = dialog.getByLabel(/Type the customer's e-mail address/);
    const final = dialog.getByRole('button', { name: 'Delete permanently' });
    expect(await final.isDisabled()).toBe(true);
    expect(await confirm.isDisabled()).toBe(true);
    await shot('delete-blocked', false);

    // Settle it from the dialog: the button's accessible name is its visible label, and it asks first.
    await dialog.getByRole('button', { name: 'Mark succeeded', exact: true }).click();
    const settle = page.getByRole('dialog', { name: 'Mark the €42.00 payment succeeded?' });
    await settle.waitFor();
    expect((await api.get(`/v1/customers/${customerId}/transactions`)).body.data[0].status).toBe('pending');
    await settle.getByRole('button', { name: 'Mark succeeded' }).click();
    await settle.waitFor({ state: 'hidden' });
    await dialog.getByText('Nothing blocks this deletion.').waitFor();
    const tx = await api.get(`/v1/customers/${customerId}/transactions`);
    expect(tx.body.data[0].status).toBe('succeeded');

    await confirm.fill(`wrong.${body.email}`);
    expect(await final.isDisabled()).toBe(true);
    await confirm.focus();
    await page.keyboard.press('Control+A');
    await page.keyboard.type(body.email);
    expect(await final.isEnabled()).toBe(true);
    await shot('delete-confirm', false);
    // The customer still exists until the final button.
    expect((await api.get(`/v1/customers/${customerId}`)).status).toBe(200);

    await page.keyboard.press('Enter');
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
    await page.getByRole('table', { name: 'Deletion cases' }).getByTitle(customerId).first().waitFor();
    // The customer filter takes an id only: an e-mail is refused before it can reach the URL.
    await page.getByLabel('Customer id').fill(body.email);
    await page.getByRole('button', { name: 'Filter', exact: true }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('Enter a customer id');
    expect(page.url()).not.toContain(body.email.split('@')[0]);
    await page.getByLabel('Customer id').fill(customerId);
    await page.getByRole('button', { name: 'Filter', exact: true }).click();
    await expect.poll(() => page.url()).toContain(`subscriptionId=${customerId}`);
    await page.getByRole('table', { name: 'Deletion cases' }).getByTitle(customerId).first().waitFor();

    // The deletion's webhook goes out; its delivery shows on the case's timeline.
    const dispatchOnce = () => env.services.port('webhookDispatcher').dispatchOnce();
    await dispatchOnce();
    expect(received.map((r) => JSON.parse(r.body).data)).toContainEqual(expect.objectContaining({ subscriptionId: customerId, applicationId: appId }));
    await page.reload();
    await page.getByRole('table', { name: 'Deletion cases' }).getByText(/Delivered/).waitFor();
    await shot('cases');
    await page.getByRole('link', { name: /Open case/ }).first().click();
    await heading('Deletion case').waitFor();
    await page.getByRole('table', { name: 'Delivery attempts' }).getByText('delivered').waitFor();
    await page.getByRole('list', { name: 'Case timeline' }).getByText(/Notification delivered/).waitFor();
    await page.goBack();
    await heading('Deletion cases').waitFor();

    // Weeks later, still unconfirmed: the case is overdue on the overview, and the number links to it.
    env.clock.advance(40 * 24 * 3600 * 1000);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click();
    await page.getByRole('link', { name: '1 Overdue cases', exact: true }).click();
    await heading('Deletion cases: overdue').waitFor();
    await page.getByRole('table', { name: 'Deletion cases' }).getByText('overdue', { exact: true }).waitFor();
    await page.getByRole('table', { name: 'Deletion cases' }).getByTitle(customerId).first().waitFor();
    await page.getByRole('button', { name: 'Clear filters' }).click();

    const appKey = await createAppKey(api, [appId]);
    const partner = client(env.app, appKey);
    const confirmed = await partner.post('/v1/data-deletions/confirmations', { subscriptionId: customerId });
    expect(confirmed.status, JSON.stringify(confirmed.body)).toBe(200);

    await page.getByLabel('State').selectOption('confirmed');
    expect(page.url()).toContain('status=confirmed');
    await page.getByRole('table', { name: 'Deletion cases' }).getByTitle(customerId).first().waitFor();
    await page.getByRole('link', { name: /Open case/ }).first().click();
    await heading('Deletion case').waitFor();
    const timeline = page.getByRole('list', { name: 'Case timeline' });
    await timeline.getByText('Confirmed by the application').waitFor();
    expect(await timeline.textContent()).toContain(confirmed.body.keyId);
    expect(await timeline.textContent()).toMatch(/Deletion required \(customer_deleted\)/);
    await shot('case');

    // A case in its grace period: the last license ended, the grace end is on the timeline.
    const other = await createCustomer(api, customerBody(`${tag}g`));
    const lic = await add(api, other.id, 'licenses', { applicationId: appId });
    // Cancelled from the console: a reason from the list (audited), a note (activity log only).
    await page.goto(`${base}/console/customers/${other.id}`);
    await page.getByRole('region', { name: /Licenses/ }).getByRole('button', { name: 'Cancel license…' }).click();
    const cancel = page.getByRole('dialog', { name: /^Cancel the license for / });
    await cancel.getByText(/grace period starts now/).waitFor();
    await cancel.getByLabel(/Reason/).selectOption('non_payment');
    await cancel.getByLabel(/Note/).fill('Card declined twice');
    await cancel.getByRole('button', { name: 'Cancel license' }).click();
    await cancel.waitFor({ state: 'hidden' });
    await expect.poll(async () => (await api.get(`/v1/customers/${other.id}/licenses`)).body.data[0].status).toBe('cancelled');
    const cancelAudit = (await api.get(`/v1/audit-events?type=license.cancelled&subjectId=${lic.id}`)).body.data[0];
    expect(cancelAudit.data.reason).toBe('non_payment');
    expect(JSON.stringify(cancelAudit)).not.toContain('declined');
    await page.goto(`${base}/console/cases?status=grace`);
    await page.getByRole('link', { name: /Open case/ }).first().click();
    await heading('Deletion case').waitFor();
    await page.getByRole('list', { name: 'Case timeline' }).getByText('Grace period ends').waitFor();
    expect(page.url()).not.toContain(other.email);
    // The customer's own page lists the case in grace, with its end date.
    await page.goto(`${base}/console/customers/${other.id}`);
    const own = page.getByRole('region', { name: /Deletion cases/ });
    await own.getByText('grace', { exact: true }).waitFor();
    await own.getByRole('link', { name: appName }).waitFor();
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
    // The new application is in the list at once, without a reload.
    await page.getByRole('table', { name: 'Applications' }).getByRole('link', { name: `Console app ${tag}` }).waitFor();
    await shot('applications');

    await page.getByRole('status').getByRole('link', { name: `Console app ${tag}` }).click();
    await heading(`Console app ${tag}`).waitFor();
    const spec = (await api.get('/openapi.json')).body;
    if (spec.paths?.['/v1/applications/{id}']?.patch) {
      await page.getByLabel('Webhook URL').fill('http://127.0.0.1:9/hook2');
      await page.getByRole('button', { name: 'Save URL' }).click();
      await page.getByRole('button', { name: 'Disable endpoint…' }).click();
      const disable = page.getByRole('dialog', { name: /Disable the endpoint/ });
      await disable.getByLabel(/Reason/).selectOption('partner_request');
      await disable.getByRole('button', { name: 'Disable endpoint' }).click();
      await page.getByRole('button', { name: 'Enable endpoint' }).waitFor();
      const apps = await api.get('/v1/applications?limit=500');
      const a = apps.body.data.find((x: { name: string }) => x.name === `Console app ${tag}`);
      expect(a).toMatchObject({ webhookUrl: 'http://127.0.0.1:9/hook2', enabled: false });
      const audited = (await api.get(`/v1/audit-events?type=application.disabled&subjectId=${a.id}`)).body.data;
      expect(audited[0].data.reasonCode).toBe('partner_request');
    }
    if (spec.paths?.['/v1/applications/{id}/rotate-secret']) {
      // A styled confirmation, never the browser's confirm().
      page.once('dialog', () => { throw new Error('native dialog'); });
      await page.getByRole('button', { name: 'Rotate secret…' }).click();
      await page.getByRole('dialog', { name: 'Rotate the webhook signing secret?' }).getByRole('button', { name: 'Rotate secret' }).click();
      await page.getByLabel('New webhook signing secret').waitFor();
      page.removeAllListeners('dialog');
    }
    await page.getByRole('heading', { name: 'Delivery log' }).waitFor();
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
    const table = page.getByRole('table', { name: 'Audit events, newest first' });
    await table.waitFor();
    // Newest first: the first row has the highest sequence number.
    const seqs = await table.locator('tbody tr td:first-child').allTextContents();
    expect(Number(seqs[0])).toBeGreaterThan(Number(seqs[seqs.length - 1]));
    await shot('audit');
    await page.getByRole('button', { name: 'Older →' }).click();
    await page.getByText('Newest first · page 2.').waitFor();
    expect(page.url()).toMatch(/cursor=.*page=2/);
    // The page is in the URL: a reload stays on it.
    await page.reload();
    await page.getByText('Newest first · page 2.').waitFor();
    await page.getByRole('button', { name: '← Newer' }).click();
    await page.getByText('Newest first · page 1.').waitFor();
    // The type filter lists the types recorded, and lives in the URL.
    await page.getByLabel('Event type').selectOption('api_key.created');
    await expect.poll(() => page.url()).toContain('type=api_key.created');
    await table.getByRole('link', { name: 'api_key.created' }).first().waitFor();
    expect(await table.getByRole('link', { name: 'customer.deleted' }).count()).toBe(0);
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

    // The save bar stays in view at the bottom of the long page, and counts what changed.
    await page.getByRole('button', { name: 'Discard changes' }).click();
    await page.getByText('No changes.').waitFor();
    await page.getByLabel('Action for customer.email').selectOption('keep');
    const row = page.getByRole('row').filter({ has: page.getByLabel('Action for customer.email') });
    expect(await row.textContent()).toMatch(/Identifies the person/);
    await page.getByLabel('Action for customer.email').scrollIntoViewIfNeeded();
    await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    const bar = page.getByRole('region', { name: 'Save settings' });
    const box = (await bar.boundingBox())!;
    expect(box.y).toBeGreaterThanOrEqual(0);
    expect(box.y + box.height).toBeLessThanOrEqual(900);
    expect(await bar.textContent()).toContain('Unsaved changes (1)');
    // Keeping an identifying field needs the explicit confirmation; the save says so in words, not API text.
    expect(await bar.getByRole('button', { name: 'Save settings' }).isDisabled()).toBe(true);
    await page.getByLabel(/I confirm keeping fields that identify the person/).check();
    // Turning off automatic deletion says what it means before saving.
    await page.getByLabel('Automatic personal data deletion').uncheck();
    await page.getByText(/customers deleted from now on keep their personal fields/).waitFor();
    await page.getByLabel('Grace period days').fill('0');
    await page.getByText(/cancelled license makes the deletion required at the next grace-period run/).waitFor();
    await shot('settings', false);

    // Leaving with unsaved changes asks first; staying keeps the edits.
    let asked = '';
    page.once('dialog', (d) => { asked = d.message(); void d.dismiss(); });
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Exports' }).click();
    await expect.poll(() => asked).toContain('unsaved changes');
    await heading('Settings').waitFor();
    expect(await bar.textContent()).toContain('Unsaved changes (3)');
    await page.getByRole('button', { name: 'Discard changes' }).click();
    const after = await api.get('/v1/settings');
    expect(after.body.automaticPersonalDataDeletion).toBe(true);
    expect(after.body.redactionPolicy['customer.email']).not.toBe('keep');
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
      await page.getByRole('link', { name: /^\d+ Customers$/ }).waitFor();
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Deletion cases' }).click();
      await page.getByText('not available on this server yet').waitFor();
      expect(await page.getByRole('alert').count()).toBe(0);
    } finally {
      await page.unroute('**/v1/data-deletions*', noRoute);
    }
  });

  it('a failing endpoint reads as failing, not notified: excerpt, next retry, filter, retry now, test webhook', async () => {
    // A partner endpoint answering 500 with a body that carries personal data.
    let status = 500;
    const failing = http.createServer((req, res) => {
      let data = '';
      req.on('data', (c: Buffer) => { data += c.toString('utf8'); });
      req.on('end', () => {
        failingReceived.push({ headers: req.headers, body: data });
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 500 ? 'Internal error: db down for max.mustermann@example.org' : '');
      });
    });
    await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
    try {
      const app = await createApplication(api, `Failing partner ${tag}`, `http://127.0.0.1:${(failing.address() as AddressInfo).port}/hook`);
      // A living customer whose last license ended: with no grace period the case is required at the next run.
      const c = await createCustomer(api, customerBody(`${tag}f`));
      const lic = await add(api, c.id, 'licenses', { applicationId: app.id });
      expect((await api.patch('/v1/settings', { gracePeriodDays: 0 })).status).toBe(200);
      expect((await api.post(`/v1/licenses/${lic.id}/cancellation`, { reason: 'contract_ended' })).status).toBe(200);
      expect((await api.post('/v1/jobs/grace-periods/run')).status).toBe(200);
      expect((await api.post('/v1/jobs/deletion-notifications/run')).status).toBe(200);
      expect((await api.patch('/v1/settings', { gracePeriodDays: 90 })).status).toBe(200);
      await env.services.port('webhookDispatcher').dispatchOnce();
      expect(failingReceived.length).toBe(1);

      await page.goto(`${base}/console/cases?applicationId=${app.id}`);
      const table = page.getByRole('table', { name: 'Deletion cases' });
      const cell = table.getByText(/Delivery failing: HTTP 500/);
      await cell.waitFor();
      expect(await table.textContent()).toMatch(/next retry \d{4}-\d\d-\d\d/);
      expect(await table.textContent()).not.toMatch(/Delivered|notified/i);
      expect(await table.textContent()).not.toContain('mustermann');
      // The "delivery failing" filter, in the URL.
      await page.goto(`${base}/console/cases`);
      await page.getByLabel('Delivery failing').check();
      await expect.poll(() => page.url()).toContain('delivery=failing');
      await heading('Deletion cases: delivery failing').waitFor();
      await page.getByRole('table', { name: 'Deletion cases' }).getByTitle(c.id).first().waitFor();
      expect(await page.getByRole('table', { name: 'Deletion cases' }).getByTitle(customerId).count()).toBe(0);

      await page.goto(`${base}/console/applications/${app.id}`);
      await heading(`Failing partner ${tag}`).waitFor();
      const health = page.getByRole('region', { name: 'Delivery health' });
      await health.getByText('Deliveries are failing').waitFor();
      expect(await health.textContent()).toContain('Internal error: db down for [email]');
      expect(await health.textContent()).toMatch(/Next retry \d{4}/);
      // At 1280 px the log's Outcome and Error columns are on screen, and the case is a link.
      const log = page.getByRole('table', { name: 'Deliveries' });
      for (const name of ['Outcome', 'Error']) {
        const b = (await log.getByRole('columnheader', { name, exact: true }).first().boundingBox())!;
        expect(b.x + b.width).toBeLessThanOrEqual(1280);
      }
      await log.getByRole('link', { name: /^[0-9a-f]{8}/ }).first().waitFor();
      await shot('application-failing');

      // Retry now: the same webhook-id goes out again at once.
      status = 204;
      await health.getByRole('button', { name: 'Retry now' }).click();
      await env.services.port('webhookDispatcher').dispatchOnce();
      expect(failingReceived.length).toBe(2);
      expect(failingReceived[1]!.headers['webhook-id']).toBe(failingReceived[0]!.headers['webhook-id']);
      await page.reload();
      await page.getByRole('region', { name: 'Delivery health' }).getByText(/Last delivery accepted/).waitFor();
      // A test webhook: sent, never a notice.
      const before = (await api.get(`/v1/data-deletions?applicationId=${app.id}`)).body.data[0];
      await page.getByRole('button', { name: 'Send a test webhook' }).click();
      await page.getByText(/Test webhook queued/).waitFor();
      await env.services.port('webhookDispatcher').dispatchOnce();
      expect(JSON.parse(failingReceived[2]!.body).type).toBe('webhook.test');
      const afterCase = (await api.get(`/v1/data-deletions?applicationId=${app.id}`)).body.data[0];
      expect(afterCase.updatedAt).toBe(before.updatedAt);
      const audit = (await api.get(`/v1/audit-events?subjectId=${app.id}&order=desc`)).body.data.map((e: { type: string }) => e.type);
      expect(audit).toEqual(expect.arrayContaining(['webhook.retry_requested', 'webhook.test_sent']));
    } finally {
      await new Promise((resolve) => failing.close(resolve));
    }
  });

  it('evidence: receipts newest first, a printable receipt, a signed JSON that verifies against the public keys', async () => {
    await page.goto(`${base}/console/`);
    await page.getByRole('link', { name: /^\d+ Deletions in the last 7 days$/ }).click();
    await heading('Deletion receipts').waitFor();
    // The tile's range (the server's last 7 days) is in the URL and the date field.
    expect(page.url()).toMatch(/\/console\/deletions\?from=\d{4}-\d\d-\d\d$/);
    expect(await page.getByLabel('From (UTC day)').inputValue()).toMatch(/^\d{4}-\d\d-\d\d$/);
    await page.getByRole('button', { name: 'All receipts' }).click();
    const list = page.getByRole('table', { name: 'Deletion receipts, newest first' });
    await list.getByTitle(customerId).first().waitFor();
    await list.getByRole('link', { name: new RegExp(customerId.slice(0, 8)) }).click();
    await heading('Deletion receipt').waitFor();
    await page.getByRole('button', { name: 'Print' }).waitFor();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download signed receipt (JSON)' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe(`deletion-receipt-${customerId}.signed.json`);
    const signed = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
    const keys = (await fetch(`${base}/v1/receipt-keys`).then((r) => r.json())) as { keys: Array<{ keyId: string; publicKey: string }> };
    const pub = keys.keys.find((k) => k.keyId === signed.keyId)!;
    const keyObject = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: pub.publicKey }, format: 'jwk' });
    expect(crypto.verify(null, Buffer.from(signed.receipt), keyObject, Buffer.from(signed.signature, 'base64url'))).toBe(true);
    const tampered = Buffer.from(signed.receipt);
    tampered[tampered.length - 2] = tampered[tampered.length - 2]! ^ 0x01;
    expect(crypto.verify(null, tampered, keyObject, Buffer.from(signed.signature, 'base64url'))).toBe(false);
    expect(JSON.parse(signed.receipt).customerId).toBe(customerId);
    await page.getByRole('list', { name: 'Receipt-signing public keys' }).getByText(pub.publicKey).waitFor();
    // Printed, the page drops navigation and buttons.
    await page.emulateMedia({ media: 'print' });
    expect(await page.getByRole('button', { name: 'Print' }).isVisible()).toBe(false);
    expect(await page.getByRole('navigation', { name: 'Main' }).isVisible()).toBe(false);
    await page.emulateMedia({ media: 'screen' });
    await shot('signed-receipt');
  });

  it('overview charts: deletions, required vs confirmed, overdue, time to confirm, each with a text alternative', async () => {
    await page.goto(`${base}/console/`);
    await heading('Overview').waitFor();
    for (const title of ['Deletions per day', 'Cases required vs confirmed', 'Overdue cases', 'Time to confirm, per application']) {
      const img = page.getByRole('img', { name: new RegExp(`^${title}\\.`) });
      await img.waitFor();
      // Drawn by the library (a canvas with pixels), not hand-made SVG.
      expect(await img.evaluate((el) => el.tagName)).toBe('CANVAS');
    }
    expect(await page.getByRole('img', { name: /^Deletions per day\./ }).getAttribute('aria-label')).toMatch(/\d+ deletions from/);
    expect(await page.getByRole('img', { name: /^Time to confirm/ }).getAttribute('aria-label')).toMatch(new RegExp(`${appName}: median`));
    await page.getByRole('link', { name: /Cases whose delivery is failing$/ }).waitFor();
    await shot('overview');
    // Every chart's numbers are also a table.
    await page.getByText('Data table').first().click();
    await page.getByRole('table', { name: 'Deletions per day' }).waitFor();
  });

  it('jobs page: lists the recorded runs (one started through the API too), runs a job after a confirmation and lists it', async () => {
    // A run the browser did not start: recorded by the server, so the page lists it.
    env.clock.advance(60_000);
    const viaApi = await api.post('/v1/jobs/retention/run');
    expect(viaApi.status).toBe(200);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).click();
    await heading('Jobs').waitFor();
    const table = page.getByRole('table', { name: 'Job runs, newest first' });
    const newest = () => table.getByRole('row').nth(1);
    await newest().getByText('Retention', { exact: true }).waitFor();
    expect(await newest().textContent()).toMatch(/manual by .*succeeded/);
    // Its result cell names what the run did (non-zero counts, by task), from the recorded counts.
    const recorded = (await api.get('/v1/job-runs?job=retention&limit=1')).body.data[0];
    expect(recorded.result).toEqual(viaApi.body.result);
    const resultCell = await newest().locator('td[data-label="Result"]').textContent();
    const done = Object.entries(recorded.result as Record<string, Record<string, number>>)
      .flatMap(([task, counts]) => Object.entries(counts).filter(([, n]) => typeof n === 'number' && n !== 0).map(([k, n]) => [task, `${k} ${n}`]));
    expect(done.length).toBeGreaterThan(0);
    for (const [task, count] of done) expect(resultCell).toMatch(new RegExp(`${task}: [^·]*${count}`));
    // The job's card shows it as its last run.
    const card = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: 'Retention' }) });
    expect(await card.textContent()).toContain(`Last run: ${env.clock.now().toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC')} (manual)`);

    env.clock.advance(60_000);
    await page.getByRole('button', { name: 'Run deletion notifications now…' }).click();
    await page.getByRole('dialog', { name: /Run “Deletion notifications” now\?/ }).getByRole('button', { name: 'Run deletion notifications' }).click();
    await newest().getByText('Deletion notifications', { exact: true }).waitFor();
    const listed = (await api.get('/v1/job-runs?limit=1')).body.data[0];
    expect(listed).toMatchObject({ job: 'deletion-notifications', trigger: 'manual', outcome: 'succeeded' });
    expect(await newest().textContent()).toMatch(listed.result.enqueued ? new RegExp(`manual by .*succeeded.*enqueued ${listed.result.enqueued}`) : /manual by .*succeeded.*nothing to do/);

    // Filtered by job: only that job's runs.
    await page.getByLabel('Job', { exact: true }).selectOption('retention');
    await table.getByRole('row').nth(1).getByText('Retention', { exact: true }).waitFor();
    const jobs = await table.locator('tbody td[data-label="Job"]').allTextContents();
    expect(jobs.length).toBeGreaterThan(0);
    expect(new Set(jobs)).toEqual(new Set(['Retention']));
    await shot('jobs');
  });

  it('works on a 390 px phone: no sideways scrolling, ids shortened, tables as cards, a menu button', async () => {
    for (let i = 0; i < 12; i++) await createCustomer(api, customerBody(`${tag}p${i}`));
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const p = await phone.newPage();
    p.on('pageerror', (e) => pageErrors.push(e.message));
    try {
      await p.goto(`${base}/console/`);
      await p.getByLabel('Operator API key').fill(env.operatorKey);
      await p.keyboard.press('Enter');
      await p.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
      // The navigation is behind a menu button.
      expect(await p.getByRole('navigation', { name: 'Main' }).isVisible()).toBe(false);
      const header = (await p.locator('header.top').boundingBox())!;
      expect(header.height).toBeLessThan(80);
      await p.getByRole('button', { name: 'Menu' }).click();
      await p.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Customers' }).click();
      await p.getByRole('heading', { level: 1, name: 'Customers' }).waitFor();
      await p.getByRole('table', { name: 'Customers' }).waitFor();
      const widths = await p.evaluate(() => ({ doc: document.documentElement.scrollWidth, inner: window.innerWidth }));
      expect(widths.doc).toBeLessThanOrEqual(widths.inner);
      // Each id is one short line, not a column of single characters.
      const idCell = p.locator('td[data-label="Id"]').first();
      expect((await idCell.boundingBox())!.height).toBeLessThan(40);
      // A long e-mail wraps inside its card instead of running off the screen.
      const email = p.locator('td[data-label="E-mail"]').first();
      expect(await email.evaluate((el) => el.scrollWidth <= el.clientWidth && el.getBoundingClientRect().right <= window.innerWidth)).toBe(true);
      const rows = await p.locator('table tbody tr').count();
      const height = await p.evaluate(() => document.documentElement.scrollHeight);
      expect(height / rows).toBeLessThan(260);
      // Inputs fit the screen.
      const input = (await p.getByLabel('E-mail address or customer id').boundingBox())!;
      expect(input.x + input.width).toBeLessThanOrEqual(390);
      await p.screenshot({ path: path.join(SHOT_DIR, 'phone-customers.png'), fullPage: false });
      if (process.env.LETHE_SCREENSHOTS === 'docs') fs.copyFileSync(path.join(SHOT_DIR, 'phone-customers.png'), path.join(DOC_DIR, 'phone-customers.png'));
      for (const route of ['/cases', '/deletions', '/audit', '/settings', `/applications/${appId}`]) {
        await p.goto(`${base}/console${route}`);
        await p.locator('h1').first().waitFor();
        await p.waitForLoadState('networkidle');
        const w = await p.evaluate(() => document.documentElement.scrollWidth);
        expect(w, route).toBeLessThanOrEqual(390);
      }
    } finally {
      await phone.close();
    }
  });

  it('accessibility details: a visible focus ring with contrast, a favicon, no failed requests', async () => {
    const failed: string[] = [];
    const onResponse = (r: import('playwright-core').Response) => { if (r.status() === 404 && !r.url().includes('/v1/')) failed.push(r.url()); };
    page.on('response', onResponse);
    await page.goto(`${base}/console/customers`);
    await heading('Customers').waitFor();
    await page.getByRole('button', { name: 'Search' }).focus();
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Tab');
    const ring = await page.evaluate(() => {
      const s = getComputedStyle(document.activeElement!);
      return { style: s.outlineStyle, color: s.outlineColor, width: s.outlineWidth };
    });
    expect(ring.style).toBe('solid');
    expect(ring.width).toBe('3px');
    // #0b3d91 on white is about 10:1 (the old amber ring was about 1.9:1).
    expect(ring.color).toBe('rgb(11, 61, 145)');
    const icon = await fetch(`${base}/console/favicon.svg`);
    expect(icon.status).toBe(200);
    expect(await page.locator('link[rel=icon]').getAttribute('href')).toBe('/console/favicon.svg');
    page.off('response', onResponse);
    expect(failed).toEqual([]);
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
