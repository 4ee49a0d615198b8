import crypto from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { createDispatcher, LEASE_MS, type Dispatcher } from '../src/webhooks/dispatcher.ts';
import { claimDue, lockClaims } from '../src/webhooks/dispatcher.repo.ts';
import { enqueueWebhook } from '../src/webhooks/outbox.repo.ts';
import { client, createTestEnv, type Client, type TestEnv } from './helpers/runtime.ts';
import { createApplication } from './helpers/fixtures.ts';
import { freePort, startReceiver, type Receiver } from './helpers/receiver.ts';

const S = 1000, M = 60 * S, H = 60 * M, D = 24 * H;
const SCHEDULE = [5 * S, 5 * M, 30 * M, 2 * H, 5 * H, 10 * H];

let env: TestEnv;
let api: Client;
let rx: Receiver;
let dispatcher: Dispatcher;
const cleanup: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  // The clock starts at real time so standardwebhooks' 5-minute timestamp tolerance holds in the
  // first tests; later tests move it on.
  env = await createTestEnv({ clockStart: new Date().toISOString(), env: { LETHE_WEBHOOK_TIMEOUT_MS: '3000' } });
  api = client(env.app, env.operatorKey);
  rx = await startReceiver();
  dispatcher = createDispatcher(env.ctx, { owner: 'test-a' });
});
afterEach(async () => { while (cleanup.length) await cleanup.pop()!(); });
afterAll(async () => {
  await dispatcher?.stop();
  await rx?.close();
  await env?.close();
});

let n = 0;
/** An application whose webhook goes to its own receiver path; disabled after the test so it stays out of later ones. */
async function endpoint(path = `/r/${n++}`, url = rx.url(path)) {
  const a = await createApplication(api, `app-${path}`, url);
  cleanup.push(() => api.patch(`/v1/applications/${a.id}`, { enabled: false }));
  return { ...a, path };
}

async function enqueue(applicationId: string, count = 1, caseId: string | null = null) {
  return env.ctx.db.transaction().execute(async (trx) => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      ids.push(await enqueueWebhook(trx, {
        applicationId, type: 'data_deletion.required', caseId,
        data: { subscriptionId: crypto.randomUUID(), applicationId, reason: 'customer_deleted', requiredSince: env.clock.now().toISOString() },
        at: env.clock.now(),
      }));
    }
    return ids;
  });
}

const row = (id: string) => env.ctx.db.selectFrom('webhookOutbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const attempts = (id: string) => env.ctx.db.selectFrom('webhookDeliveries').selectAll().where('outboxId', '=', id).orderBy('attempt').execute();
const application = (id: string) => env.ctx.db.selectFrom('applications').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

/** The Standard Webhooks signature computed by hand: base64 HMAC-SHA256 of "id.timestamp.body" keyed with the base64 part of whsec_. */
function handSignature(secret: string, id: string, timestamp: string, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${crypto.createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

describe('signing', () => {
  it('POSTs the payload with Standard Webhooks headers that verify with the package and by hand', async () => {
    const a = await endpoint();
    const [id] = await enqueue(a.id);
    const summary = await dispatcher.drain();
    expect(summary.outcomes.delivered).toBe(1);

    const [got] = rx.to(a.path);
    expect(got).toBeDefined();
    const h = got!.headers;
    expect(h['content-type']).toBe('application/json');
    expect(h['webhook-id']).toBe(id);
    expect(h['webhook-timestamp']).toBe(String(Math.floor(env.clock.now().getTime() / 1000)));
    const body = JSON.parse(got!.body);
    expect(Object.keys(body)).toEqual(['type', 'timestamp', 'data']);
    expect(body).toMatchObject({ type: 'data_deletion.required', data: { applicationId: a.id, reason: 'customer_deleted' } });

    const verified = new Webhook(a.webhookSecret).verify(got!.body, {
      'webhook-id': String(h['webhook-id']), 'webhook-timestamp': String(h['webhook-timestamp']), 'webhook-signature': String(h['webhook-signature']),
    });
    expect(verified).toEqual(body);
    expect(h['webhook-signature']).toBe(handSignature(a.webhookSecret, id!, String(h['webhook-timestamp']), got!.body));
    // A wrong secret does not verify.
    expect(() => new Webhook(`whsec_${crypto.randomBytes(32).toString('base64')}`).verify(got!.body, h as Record<string, string>)).toThrow();

    expect(await row(id!)).toMatchObject({ status: 'delivered', attempts: 1, leaseOwner: null, lastStatusCode: 204 });
    const att = await attempts(id!);
    expect(att).toHaveLength(1);
    expect(att[0]).toMatchObject({ attempt: 1, outcome: 'delivered', statusCode: 204, error: null });
  });

  it('signs with both secrets for 24 hours after a rotation, then with the new one only', async () => {
    const a = await endpoint();
    const rot = await api.post(`/v1/applications/${a.id}/rotate-secret`);
    expect(rot.status).toBe(200);
    const fresh = rot.body.webhookSecret as string;
    expect(fresh).toMatch(/^whsec_/);
    expect(fresh).not.toBe(a.webhookSecret);
    expect(rot.body.previousSecretExpiresAt).toBe(new Date(env.clock.now().getTime() + D).toISOString());
    // The secret is shown once: reads never carry it.
    expect(JSON.stringify((await api.get(`/v1/applications/${a.id}`)).body)).not.toContain(fresh.slice(6, 20));

    const [id] = await enqueue(a.id);
    await dispatcher.drain();
    const got = rx.to(a.path)[0]!;
    const sigs = String(got.headers['webhook-signature']).split(' ');
    const ts = String(got.headers['webhook-timestamp']);
    expect(sigs).toEqual([handSignature(fresh, id!, ts, got.body), handSignature(a.webhookSecret, id!, ts, got.body)]);
    for (const secret of [fresh, a.webhookSecret]) {
      expect(() => new Webhook(secret).verify(got.body, got.headers as Record<string, string>)).not.toThrow();
    }

    env.clock.advance(D + S);
    const [id2] = await enqueue(a.id);
    await dispatcher.drain();
    const got2 = rx.to(a.path)[1]!;
    expect(String(got2.headers['webhook-signature'])).toBe(handSignature(fresh, id2!, String(got2.headers['webhook-timestamp']), got2.body));
  });
});

describe('retries', () => {
  it('retries on the backoff schedule with a stable webhook-id, then fails; errors never echo the response body', async () => {
    const a = await endpoint();
    rx.on(a.path, (_r, res) => res.writeHead(500, { 'content-type': 'text/plain' }).end('SECRET-RECEIVER-BODY'));
    const [id] = await enqueue(a.id);
    const t0 = env.clock.now().getTime();

    await dispatcher.drain();
    let due = t0;
    for (const delay of SCHEDULE) {
      due += delay;
      expect((await row(id!)).nextAttemptAt.getTime()).toBe(due);
      env.clock.set(new Date(due - 1));
      expect((await dispatcher.drain()).claimed).toBe(0);
      env.clock.set(new Date(due));
      expect((await dispatcher.drain()).claimed).toBe(1);
    }
    const final = await row(id!);
    expect(final).toMatchObject({ status: 'failed', attempts: 7, lastStatusCode: 500, leaseOwner: null });
    env.clock.advance(D);
    expect((await dispatcher.drain()).claimed).toBe(0);

    const got = rx.to(a.path);
    expect(got).toHaveLength(7);
    expect(new Set(got.map((g) => g.headers['webhook-id']))).toEqual(new Set([id]));
    expect(new Set(got.map((g) => g.body)).size).toBe(1);
    const att = await attempts(id!);
    expect(att.map((x) => x.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(att.every((x) => x.outcome === 'failed' && x.statusCode === 500 && x.error === 'HTTP 500')).toBe(true);

    const listed = await api.get(`/v1/applications/${a.id}/deliveries?limit=5`);
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((d: { attempt: number }) => d.attempt)).toEqual([7, 6, 5, 4, 3]);
    expect(listed.raw).not.toContain('SECRET-RECEIVER-BODY');
    const metrics = await api.get('/metrics');
    expect(metrics.raw).toMatch(/lethe_webhook_deliveries_total\{outcome="failed"\} ([7-9]|\d\d+)/);
    const next = await api.get(`/v1/applications/${a.id}/deliveries?limit=5&cursor=${listed.body.nextCursor}`);
    expect(next.body.data.map((d: { attempt: number }) => d.attempt)).toEqual([2, 1]);
    expect(next.body.nextCursor).toBeNull();
  });

  it('honours Retry-After on 429 (seconds) and 503 (HTTP date), never sooner than the schedule', async () => {
    const a = await endpoint();
    const answers = [
      (res: import('node:http').ServerResponse) => res.writeHead(429, { 'retry-after': '120' }).end(),
      (res: import('node:http').ServerResponse) => res.writeHead(503, { 'retry-after': new Date(env.clock.now().getTime() + 2 * H).toUTCString() }).end(),
      (res: import('node:http').ServerResponse) => res.writeHead(429, { 'retry-after': '1' }).end(),
      (res: import('node:http').ServerResponse) => res.writeHead(200).end(),
    ];
    rx.on(a.path, (_r, res) => answers.shift()!(res));
    const [id] = await enqueue(a.id);
    const t = () => env.clock.now().getTime();

    await dispatcher.drain();
    expect((await row(id!)).nextAttemptAt.getTime()).toBe(t() + 120 * S); // Retry-After beats the 5 s step
    env.clock.advance(120 * S);
    await dispatcher.drain();
    // The HTTP date beats the 5 min step (HTTP dates have whole seconds).
    expect((await row(id!)).nextAttemptAt.getTime()).toBe(Math.floor((t() + 2 * H) / S) * S);
    env.clock.advance(2 * H);
    await dispatcher.drain();
    expect((await row(id!)).nextAttemptAt.getTime()).toBe(t() + 30 * M); // 1 s asked, the 30 min step applies
    env.clock.advance(30 * M);
    await dispatcher.drain();
    expect(await row(id!)).toMatchObject({ status: 'delivered', attempts: 4 });
    expect((await attempts(id!)).map((x) => x.statusCode)).toEqual([429, 503, 429, 200]);
  });

  it('does not follow redirects: a 3xx is a failure', async () => {
    const a = await endpoint();
    const elsewhere = `${a.path}-elsewhere`;
    rx.on(a.path, (_r, res) => res.writeHead(302, { location: rx.url(elsewhere) }).end());
    const [id] = await enqueue(a.id);
    await dispatcher.drain();
    expect(rx.to(elsewhere)).toHaveLength(0);
    expect(await row(id!)).toMatchObject({ status: 'pending', attempts: 1, lastStatusCode: 302 });
    expect((await attempts(id!))[0]).toMatchObject({ outcome: 'failed', statusCode: 302 });
  });

  it('gives up on a receiver that does not answer within the timeout', async () => {
    const a = await endpoint();
    const held: Array<import('node:http').ServerResponse> = [];
    rx.on(a.path, (_r, res) => { held.push(res); });
    cleanup.push(async () => { for (const r of held) r.destroy(); });
    const [id] = await enqueue(a.id);
    await dispatcher.drain();
    expect(rx.to(a.path)).toHaveLength(1);
    expect(await row(id!)).toMatchObject({ status: 'pending', attempts: 1, lastStatusCode: null });
    expect((await attempts(id!))[0]).toMatchObject({ outcome: 'timeout', statusCode: null, error: 'no response within 3000 ms' });
  });
});

describe('endpoint health', () => {
  it('410 Gone disables the endpoint; its webhooks wait, unattempted, until it is re-enabled', async () => {
    const a = await endpoint();
    let gone = true;
    rx.on(a.path, (_r, res) => res.writeHead(gone ? 410 : 204).end());
    const [first] = await enqueue(a.id);
    await dispatcher.drain();
    expect(await application(a.id)).toMatchObject({ enabled: false, disabledReason: 'gone' });
    const view = await api.get(`/v1/applications/${a.id}`);
    expect(view.body).toMatchObject({ enabled: false, disabledReason: 'gone' });
    const audit = await api.get(`/v1/audit-events?subjectId=${a.id}&type=application.disabled`);
    expect(audit.body.data).toHaveLength(1);
    expect(audit.body.data[0].data).toMatchObject({ reason: 'gone' });

    const more = await enqueue(a.id, 3);
    env.clock.advance(3 * D);
    expect((await dispatcher.drain()).claimed).toBe(0);
    expect(rx.to(a.path)).toHaveLength(1);
    for (const id of [first!, ...more]) expect((await row(id)).status).toBe('pending');
    expect((await attempts(more[0]!))).toHaveLength(0);

    gone = false;
    const re = await api.patch(`/v1/applications/${a.id}`, { enabled: true });
    expect(re.status).toBe(200);
    expect(re.body).toMatchObject({ enabled: true, disabledReason: null, failingSince: null });
    await dispatcher.drain();
    for (const id of [first!, ...more]) expect((await row(id)).status).toBe('delivered');
    expect(rx.to(a.path).filter((r) => r.headers['webhook-id'] === first)).toHaveLength(2);
    const enabled = await api.get(`/v1/audit-events?subjectId=${a.id}&type=application.enabled`);
    expect(enabled.body.data).toHaveLength(1);
  });

  it('disables an endpoint failing continuously for 5 days; re-enabling resumes delivery', async () => {
    const a = await endpoint();
    let up = false;
    rx.on(a.path, (_r, res) => res.writeHead(up ? 200 : 500).end());
    const start = env.clock.now().getTime();
    const ids: string[] = [];
    // A daily webhook, as the notification pass would send; each is retried on the schedule.
    for (let day = 0; day <= 5; day++) {
      env.clock.set(new Date(start + day * D));
      ids.push(...await enqueue(a.id));
      for (const delay of [0, ...SCHEDULE]) {
        env.clock.advance(delay);
        await dispatcher.drain();
      }
      const app = await application(a.id);
      expect(app.failingSince?.getTime()).toBe(start);
      if (day < 5) expect(app.enabled, `day ${day}`).toBe(true);
    }
    // Day 5 crossed the 5-day mark during that day's retries.
    expect(await application(a.id)).toMatchObject({ enabled: false, disabledReason: 'failing' });
    const pending = [];
    for (const id of ids) if ((await row(id)).status === 'pending') pending.push(id);
    expect(pending.length).toBeGreaterThanOrEqual(1);
    expect(pending).toContain(ids[5]);

    up = true;
    env.clock.advance(D);
    expect((await dispatcher.drain()).claimed).toBe(0);
    expect((await api.patch(`/v1/applications/${a.id}`, { enabled: true })).status).toBe(200);
    await dispatcher.drain();
    for (const id of pending) expect((await row(id)).status).toBe('delivered');
    expect((await application(a.id)).failingSince).toBeNull();
  });

  it('holds webhooks of an application without a webhook URL until one is set', async () => {
    const a = await createApplication(api, `no-url-${n++}`, null);
    const [id] = await enqueue(a.id);
    expect((await dispatcher.drain()).claimed).toBe(0);
    const path = `/r/${n++}`;
    expect((await api.patch(`/v1/applications/${a.id}`, { webhookUrl: rx.url(path) })).status).toBe(200);
    cleanup.push(() => api.patch(`/v1/applications/${a.id}`, { enabled: false }));
    await dispatcher.drain();
    expect((await row(id!)).status).toBe('delivered');
    expect(rx.to(path)).toHaveLength(1);
  });
});

describe('concurrency and recovery', () => {
  it('keeps at most N deliveries in flight per endpoint, across two dispatchers', async () => {
    const a = await endpoint();
    const b = await endpoint();
    // Each receiver path holds requests and answers them in batches once 10 are waiting (or the
    // queue is running dry), so the peak shows the cap.
    for (const p of [a.path, b.path]) {
      const waiting: Array<import('node:http').ServerResponse> = [];
      let timer: NodeJS.Timeout | undefined;
      const flush = () => { for (const res of waiting.splice(0)) res.writeHead(204).end(); };
      rx.on(p, (_r, res) => {
        waiting.push(res);
        clearTimeout(timer);
        if (waiting.length >= 10) flush();
        else timer = setTimeout(flush, 150);
      });
    }
    const ids = [...await enqueue(a.id, 60), ...await enqueue(b.id, 25)];
    // The full 15 s timeout here: the fake clock stands still, so a timed-out attempt would wait forever.
    const patient = { ...env.ctx, config: { ...env.ctx.config, webhookTimeoutMs: 15_000 } };
    const other = createDispatcher(patient, { owner: 'test-b', pollMs: 20 });
    const mine = createDispatcher(patient, { owner: 'test-c', pollMs: 20 });
    mine.start();
    other.start();
    try {
      await expect.poll(async () => {
        const r = await env.ctx.db.selectFrom('webhookOutbox').select((eb) => eb.fn.countAll<number>().as('n'))
          .where('id', 'in', ids).where('status', '=', 'delivered').executeTakeFirstOrThrow();
        return Number(r.n);
      }, { timeout: 50_000, interval: 100 }).toBe(85);
    } finally {
      await mine.stop();
      await other.stop();
    }
    expect(rx.peak(a.path)).toBe(10);
    expect(rx.peak(b.path)).toBe(10);
    expect(rx.to(a.path)).toHaveLength(60);
  });

  it("takes over a dead instance's rows once its leases expire, within a minute", async () => {
    const a = await endpoint();
    const ids = await enqueue(a.id, 5);
    // An instance leases the rows and dies before sending anything.
    const now = env.clock.now();
    const leased = await env.ctx.db.transaction().execute(async (trx) => {
      await lockClaims(trx);
      return claimDue(trx, { owner: 'dead', now, leaseUntil: new Date(now.getTime() + LEASE_MS), perEndpoint: 10, max: 100 });
    });
    expect(leased.map((r) => r.id).sort()).toEqual([...ids].sort());
    expect(LEASE_MS).toBeLessThanOrEqual(60_000);
    // While its lease lives, nobody else sends to that endpoint.
    expect((await dispatcher.drain()).claimed).toBe(0);
    env.clock.advance(LEASE_MS - 1);
    expect((await dispatcher.drain()).claimed).toBe(0);
    env.clock.advance(1);
    expect((await dispatcher.drain()).claimed).toBe(5);
    for (const id of ids) expect(await row(id)).toMatchObject({ status: 'delivered', attempts: 1, leaseOwner: null });
    expect(rx.to(a.path)).toHaveLength(5);
  });

  it('a receiver that is down for a while then up gets everything', async () => {
    const port = await freePort();
    const path = '/down-then-up';
    const a = await endpoint(path, `http://127.0.0.1:${port}${path}`);
    const ids = await enqueue(a.id, 30);
    await dispatcher.drain();
    env.clock.advance(5 * S);
    await dispatcher.drain();
    expect((await attempts(ids[0]!)).map((x) => x.outcome)).toEqual(['network_error', 'network_error']);

    const late = await startReceiver(port);
    try {
      env.clock.advance(5 * M);
      await dispatcher.drain();
      for (const id of ids) expect((await row(id)).status).toBe('delivered');
      expect(new Set(late.to(path).map((r) => r.headers['webhook-id']))).toEqual(new Set(ids));
    } finally {
      await late.close();
    }
  });
});

describe('connect-time SSRF guard', () => {
  it('refuses to connect when the stored host is private or now resolves to a private address', async () => {
    const strict = createDispatcher({ ...env.ctx, config: { ...env.ctx.config, webhookAllowPrivate: false } }, {
      owner: 'strict', resolve: async (host) => (host === 'rebind.example' ? ['127.0.0.1'] : ['93.184.216.34']),
    });
    cleanup.push(() => strict.stop());
    const literal = await endpoint(); // registered while private addresses were allowed
    const rebinding = await endpoint('/rebind', `http://rebind.example:${rx.port}/rebind`);
    const [l] = await enqueue(literal.id);
    const [r] = await enqueue(rebinding.id);
    await strict.drain();
    expect(rx.to(literal.path)).toHaveLength(0);
    expect(rx.to('/rebind')).toHaveLength(0);
    expect((await attempts(l!))[0]).toMatchObject({ outcome: 'refused' });
    expect((await attempts(r!))[0]).toMatchObject({ outcome: 'refused' });
    expect((await row(r!)).status).toBe('pending');
  });
});
