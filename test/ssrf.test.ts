import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../src/http/errors.ts';
import { createSsrfGuard, isPublicAddress, type Resolver } from '../src/webhooks/ssrf.ts';
import { client, createTestEnv, type TestEnv } from './helpers/runtime.ts';

// A stub resolver: there is no DNS here, and the guard must not depend on it in tests.
const ZONE: Record<string, string[]> = {
  'evil.example': ['127.0.0.1'],
  'private10.example': ['10.1.2.3'],
  'mixed.example': ['93.184.216.34', '192.168.1.10'],
  'v6loop.example': ['::1'],
  'v6ula.example': ['fd12:3456::1'],
  'meta.example': ['169.254.169.254'],
  'mapped.example': ['::ffff:10.0.0.1'],
  'cgnat.example': ['100.64.1.1'],
  'zero.example': ['0.0.0.0'],
  'hooks.partner.example': ['93.184.216.34'],
  'v6.partner.example': ['2606:4700:4700::1111'],
  'idn.xn--bcher-kva.example': ['93.184.216.35'],
};
const resolve: Resolver = async (host) => {
  const a = ZONE[host];
  if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return a;
};
const guard = createSsrfGuard({ allowPrivate: false, resolve });

const HOSTILE: string[] = [
  // schemes
  'ftp://93.184.216.34/hook', 'file:///etc/passwd', 'gopher://93.184.216.34/', 'javascript:alert(1)', 'data:text/plain,hi',
  // loopback in every spelling
  'http://127.0.0.1/hook', 'http://127.1/', 'http://2130706433/', 'http://0x7f000001/', 'http://0177.0.0.1/',
  'http://017700000001/', 'http://0x7f.1/', 'http://１２７.０.０.１/', 'http://127.0.0.1.:8080/', 'http://127.255.255.254/',
  'http://localhost/', 'http://localhost./', 'http://LOCALHOST/', 'http://ⓛocalhost/', 'http://api.localhost/',
  'http://[::1]/', 'http://[0:0:0:0:0:0:0:1]/', 'http://[::ffff:127.0.0.1]/', 'http://[::ffff:7f00:1]/',
  'http://[0:0:0:0:0:ffff:127.0.0.1]/',
  // credentials and parser tricks
  'http://partner.example@127.0.0.1/', 'http://user:pass@hooks.partner.example/', 'http://127.0.0.1:80#@hooks.partner.example/',
  'http://hooks.partner.example\\@evil.example/x',
  // private, CGNAT, link-local, metadata, unspecified, multicast, broadcast, reserved
  'http://10.0.0.1/', 'http://172.16.0.1/', 'http://172.31.255.255/', 'http://192.168.0.1/', 'http://100.64.0.1/',
  'http://169.254.169.254/latest/meta-data/', 'http://169.254.1.1/', 'http://[fe80::1]/', 'http://[fc00::1]/',
  'http://[fd00:ec2::254]/', 'http://0.0.0.0/', 'http://0/', 'http://[::]/', 'http://224.0.0.1/', 'http://[ff02::1]/',
  'http://255.255.255.255/', 'http://192.0.2.1/', 'http://240.0.0.1/', 'http://[::ffff:169.254.169.254]/',
  'http://[64:ff9b::a00:1]/', 'http://[2002:7f00:1::]/',
  // Issue 17: IPv4-compatible ::/96 and other IPv6 forms embedding a private/loopback IPv4 address.
  'http://[::127.0.0.1]/', 'http://[::7f00:1]/', 'http://[::10.0.0.1]/', 'http://[::169.254.169.254]/', 'http://[::8.8.8.8]/',
  'http://[0:0:0:0:0:0:7f00:1]/', 'http://[::ffff:0:7f00:1]/', 'http://[64:ff9b:1::a00:1]/', 'http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/',
  // metadata and internal names
  'http://metadata.google.internal/computeMetadata/v1/', 'http://METADATA.google.internal./', 'http://metadata/',
  'http://instance-data/', 'http://printer.local/', 'http://intranet/',
  // names resolving to bad addresses (DNS), and names that do not resolve
  'http://evil.example/', 'http://private10.example/', 'https://mixed.example/', 'http://v6loop.example/',
  'http://v6ula.example/', 'http://meta.example/', 'http://mapped.example/', 'http://cgnat.example/', 'http://zero.example/',
  'https://nx.example/', 'http://hooks.partner.example:0/',
];

const SAFE = [
  'https://hooks.partner.example/lethe', 'http://hooks.partner.example:8443/x?y=1', 'https://v6.partner.example/',
  'https://93.184.216.34/hook', 'https://[2606:4700:4700::1111]/hook', 'https://idn.bücher.example/hook',
  'https://hooks.partner.example./trailing-dot',
];

async function verdict(url: string): Promise<string> {
  try {
    await guard.checkUrl(url);
    return 'accepted';
  } catch (e) {
    if (e instanceof AppError) return e.code;
    throw e;
  }
}

describe('SSRF guard at registration', () => {
  it('has a table of at least 30 hostile URLs', () => {
    expect(HOSTILE.length).toBeGreaterThanOrEqual(30);
  });

  it.each(HOSTILE)('refuses %s', async (url) => {
    expect(await verdict(url)).toBe('unsafe_webhook_url');
  });

  it.each(SAFE)('accepts %s', async (url) => {
    expect(await verdict(url)).toBe('accepted');
  });

  it('answers validation_failed for a string that is not a URL', async () => {
    expect(await verdict('not a url')).toBe('validation_failed');
    expect(await verdict('http://[fe80::1%25eth0]/')).toBe('validation_failed');
  });

  it('allows private addresses only when LETHE_WEBHOOK_ALLOW_PRIVATE is on, and still refuses other schemes', async () => {
    const open = createSsrfGuard({ allowPrivate: true, resolve });
    await expect(open.checkUrl('http://127.0.0.1:9999/hook')).resolves.toBeUndefined();
    await expect(open.checkUrl('ftp://127.0.0.1/')).rejects.toMatchObject({ code: 'unsafe_webhook_url' });
    await expect(open.checkUrl('http://u:p@127.0.0.1/')).rejects.toMatchObject({ code: 'unsafe_webhook_url' });
    expect(open.lookup).toBeUndefined();
  });

  it('classifies addresses', () => {
    for (const a of ['::127.0.0.1', '::a00:1', '::ffff:0:7f00:1', '127.0.0.1', '10.0.0.1', '::1', '::ffff:10.0.0.1', 'fe80::1', '169.254.169.254', '0.0.0.0', 'nonsense']) {
      expect(isPublicAddress(a), a).toBe(false);
    }
    for (const a of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8']) expect(isPublicAddress(a), a).toBe(true);
  });
});

describe('SSRF guard at connect time (DNS rebinding)', () => {
  // The zone answers differently at connect time than it did at registration.
  let rebound = false;
  const rebinding: Resolver = async (host) => (host === 'rebind.example' ? [rebound ? '127.0.0.1' : '93.184.216.34'] : resolve(host));
  const g = createSsrfGuard({ allowPrivate: false, resolve: rebinding });
  const lookup = (host: string, all: boolean) => new Promise<{ err: NodeJS.ErrnoException | null; address: unknown }>((done) => {
    g.lookup!(host, { all }, (err, address) => done({ err, address }));
  });

  it('connects to the checked public addresses, and refuses when the name now resolves privately', async () => {
    await g.checkUrl('https://rebind.example/hook');
    expect(await lookup('rebind.example', false)).toEqual({ err: null, address: '93.184.216.34' });
    expect((await lookup('rebind.example', true)).address).toEqual([{ address: '93.184.216.34', family: 4 }]);
    rebound = true;
    const r = await lookup('rebind.example', true);
    expect(r.err?.code).toBe('EUNSAFEADDRESS');
    expect((await lookup('metadata.google.internal', false)).err?.code).toBe('EUNSAFEADDRESS');
  });

  it('checks literal addresses without DNS', () => {
    expect(g.literalProblem(new URL('http://2130706433/'))).not.toBeNull();
    expect(g.literalProblem(new URL('http://[::ffff:7f00:1]/'))).not.toBeNull();
    expect(g.literalProblem(new URL('https://93.184.216.34/'))).toBeNull();
  });
});

describe('registration through the API', () => {
  let env: TestEnv;
  beforeAll(async () => { env = await createTestEnv({ env: { LETHE_WEBHOOK_ALLOW_PRIVATE: 'false' } }); });
  afterAll(async () => env?.close());

  it('refuses hostile URLs with 400 unsafe_webhook_url on create', async () => {
    const api = client(env.app, env.operatorKey);
    for (const webhookUrl of ['http://2130706433/', 'http://[::ffff:127.0.0.1]/', 'http://169.254.169.254/', 'ftp://93.184.216.34/',
      'http://a@10.0.0.1/', 'http://metadata.google.internal/']) {
      const r = await api.post('/v1/applications', { name: 'x', webhookUrl });
      expect(r.status, webhookUrl).toBe(400);
      expect(r.body.code, webhookUrl).toBe('unsafe_webhook_url');
    }
    const ok = await api.post('/v1/applications', { name: 'public', webhookUrl: 'https://93.184.216.34/hook' });
    expect(ok.status).toBe(201);
  });
});
