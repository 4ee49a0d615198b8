// The partner side of a data deletion, done once for every partner application:
// verify the Standard Webhooks signature, refuse stale timestamps, de-duplicate by webhook-id,
// double-check the customer's remaining licenses, call the application's delete function,
// confirm with its outcome (retrying transient failures). Also a pull mode for applications
// without a public URL. Framework-neutral core: `handle(headers, rawBody) => result`.
import type http from 'node:http';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import createClient from 'openapi-fetch';
import type { paths } from './schema.ts';

type CaseList = paths['/v1/data-deletions']['get']['responses'][200]['content']['application/json'];
type Confirmation = paths['/v1/data-deletions/confirmations']['post']['responses'][200]['content']['application/json'];
export type DeletionOutcome = NonNullable<paths['/v1/data-deletions/confirmations']['post']['requestBody']>['content']['application/json']['outcome'] & string;

/** What the application is asked to delete: `subscriptionId` is the customer's id at the platform. */
export interface DeletionEvent {
  subscriptionId: string;
  applicationId: string;
  reason: 'grace_expired' | 'customer_deleted' | null;
  requiredSince: string | null;
  /** The webhook-id (push mode) or null (pull mode). */
  webhookId: string | null;
}

/** Remembers processed webhook-ids (de-duplication). The default keeps them in memory for a day. */
export interface WebhookIdStore {
  has(id: string): boolean | Promise<boolean>;
  add(id: string): void | Promise<void>;
}

export interface DeletionHandlerOptions {
  /** The application's `whsec_…` secret; several during a rotation (any one may verify). */
  webhookSecret: string | string[];
  /** An application API key (confirms, reads licenses and due cases). */
  apiKey: string;
  /** Where Lethe answers, e.g. https://lethe.example.com. */
  baseUrl: string;
  /**
   * Deletes everything the application holds about the customer. Must be idempotent (a failed
   * confirmation is retried, and Lethe redelivers until confirmed). Returns `deleted`, or
   * `no_data_held` when the application held nothing about the customer.
   */
  deleteCustomerData(event: DeletionEvent): Promise<DeletionOutcome>;
  /** Refuse webhooks whose timestamp is further than this from now (seconds; default 300, never more). */
  toleranceSeconds?: number;
  /** Confirmation / API retries on network errors, 429 and 5xx (default 4 attempts, 250 ms doubling). */
  retry?: { attempts?: number; baseDelayMs?: number };
  /** De-duplication store (default: in memory, 24 h). */
  seen?: WebhookIdStore;
  fetch?: typeof globalThis.fetch;
  /** The clock (tests). */
  now?: () => Date;
}

export type HandlerAction = 'deleted' | 'no_data_held' | 'active_license' | 'not_required' | 'duplicate' | 'in_progress'
  | 'test' | 'ignored' | 'rejected' | 'failed';

/** What to answer Lethe: any 2xx is a delivery, anything else is retried later. */
export interface HandlerResult {
  status: number;
  body: { ok: boolean; action: HandlerAction; error?: string };
}

export interface PullSummary { processed: number; deleted: number; noDataHeld: number; activeLicense: number; notRequired: number; failed: number }

export interface DeletionHandler {
  /** The framework-neutral core: the request's headers and its raw body (exactly as received). */
  handle(headers: Record<string, string | string[] | undefined>, rawBody: string | Buffer): Promise<HandlerResult>;
  /** Pull mode: lists the caller's due cases and processes each like a webhook. */
  processDueCases(): Promise<PullSummary>;
  /** One case, outside any webhook (pull mode uses it). */
  processCase(event: DeletionEvent): Promise<HandlerAction>;
}

class HttpFailure extends Error {
  readonly status: number;
  readonly code: string | undefined;
  constructor(status: number, code: string | undefined, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const transient = (err: unknown) => !(err instanceof HttpFailure) || err.status === 429 || err.status >= 500;

export function memoryWebhookIdStore(ttlMs = 86_400_000, now: () => number = Date.now): WebhookIdStore {
  const ids = new Map<string, number>();
  return {
    has(id) {
      const at = ids.get(id);
      if (at !== undefined && now() - at > ttlMs) ids.delete(id);
      return ids.has(id);
    },
    add(id) {
      ids.set(id, now());
      if (ids.size > 100_000) for (const [k, at] of ids) if (now() - at > ttlMs) ids.delete(k);
    },
  };
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name] ?? headers[name.toLowerCase()] ?? Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
  return Array.isArray(v) ? v[0] : v;
}

export function createDeletionHandler(options: DeletionHandlerOptions): DeletionHandler {
  const secrets = [options.webhookSecret].flat();
  if (secrets.length === 0 || secrets.some((s) => !s.startsWith('whsec_'))) throw new Error('webhookSecret must be a whsec_… secret');
  const verifiers = secrets.map((s) => new Webhook(s));
  const tolerance = Math.min(options.toleranceSeconds ?? 300, 300);
  const attempts = Math.max(1, options.retry?.attempts ?? 4);
  const baseDelay = options.retry?.baseDelayMs ?? 250;
  const now = options.now ?? (() => new Date());
  const seen = options.seen ?? memoryWebhookIdStore(86_400_000, () => now().getTime());
  const inFlight = new Set<string>();
  const api = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    headers: { authorization: `Bearer ${options.apiKey}` },
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });

  async function withRetry<T>(fn: () => Promise<T>): Promise<T> {
    for (let i = 1; ; i++) {
      try {
        return await fn();
      } catch (err) {
        if (i >= attempts || !transient(err)) throw err;
        await sleep(baseDelay * 2 ** (i - 1));
      }
    }
  }

  const fail = (response: Response, error: unknown, what: string) => {
    const e = error as { code?: string; detail?: string } | undefined;
    return new HttpFailure(response.status, e?.code, `${what}: HTTP ${response.status} ${e?.code ?? ''} ${e?.detail ?? ''}`.trim());
  };

  /** The double-check the partner contract asks for: does the customer hold an active license for this application again? */
  async function holdsActiveLicense(event: DeletionEvent): Promise<boolean> {
    return withRetry(async () => {
      const { data, error, response } = await api.GET('/v1/customers/{id}/licenses', {
        params: { path: { id: event.subscriptionId }, query: { limit: 500 } },
      });
      if (response.status === 404) return false; // the customer is deleted: nothing can be active
      if (!data) throw fail(response, error, 'license check');
      return data.data.some((l) => l.status === 'active' && l.applicationId === event.applicationId);
    });
  }

  async function confirm(event: DeletionEvent, outcome: DeletionOutcome): Promise<Confirmation | 'not_required'> {
    return withRetry(async () => {
      const { data, error, response } = await api.POST('/v1/data-deletions/confirmations', {
        body: { subscriptionId: event.subscriptionId, applicationId: event.applicationId, outcome },
      });
      if (data) return data;
      const code = (error as { code?: string } | undefined)?.code;
      // The case was revoked (the customer came back) or is in a grace period again: nothing to confirm.
      if (response.status === 409 && code === 'deletion_not_required') return 'not_required';
      throw fail(response, error, 'confirmation');
    });
  }

  async function processCase(event: DeletionEvent): Promise<HandlerAction> {
    if (await holdsActiveLicense(event)) return 'active_license';
    const outcome = await options.deleteCustomerData(event);
    if (outcome !== 'deleted' && outcome !== 'no_data_held') throw new Error(`deleteCustomerData returned ${String(outcome)}`);
    const c = await confirm(event, outcome);
    return c === 'not_required' ? 'not_required' : outcome;
  }

  function verify(headers: Record<string, string | string[] | undefined>, rawBody: string | Buffer): unknown {
    const h = {
      'webhook-id': header(headers, 'webhook-id') ?? '',
      'webhook-timestamp': header(headers, 'webhook-timestamp') ?? '',
      'webhook-signature': header(headers, 'webhook-signature') ?? '',
    };
    const ts = Number(h['webhook-timestamp']);
    if (!Number.isFinite(ts) || Math.abs(now().getTime() / 1000 - ts) > tolerance) {
      throw new WebhookVerificationError('Message timestamp too old or too new');
    }
    let last: unknown;
    for (const v of verifiers) {
      try { return v.verify(rawBody, h); } catch (err) { last = err; }
    }
    throw last;
  }

  async function handle(headers: Record<string, string | string[] | undefined>, rawBody: string | Buffer): Promise<HandlerResult> {
    let payload: { type?: string; data?: Partial<DeletionEvent> };
    try {
      payload = verify(headers, rawBody) as typeof payload;
    } catch (err) {
      return { status: 401, body: { ok: false, action: 'rejected', error: (err as Error).message } };
    }
    const id = header(headers, 'webhook-id')!;
    if (await seen.has(id)) return { status: 200, body: { ok: true, action: 'duplicate' } };
    if (payload.type === 'webhook.test') return { status: 200, body: { ok: true, action: 'test' } };
    if (payload.type !== 'data_deletion.required') return { status: 200, body: { ok: true, action: 'ignored' } };
    const d = payload.data ?? {};
    if (typeof d.subscriptionId !== 'string' || typeof d.applicationId !== 'string') {
      return { status: 400, body: { ok: false, action: 'failed', error: 'data.subscriptionId and data.applicationId are required' } };
    }
    // The same webhook arriving again while the first is being processed: ask Lethe to retry later.
    if (inFlight.has(id)) return { status: 409, body: { ok: false, action: 'in_progress' } };
    inFlight.add(id);
    try {
      const action = await processCase({
        subscriptionId: d.subscriptionId, applicationId: d.applicationId, reason: d.reason ?? null,
        requiredSince: d.requiredSince ?? null, webhookId: id,
      });
      await seen.add(id);
      return { status: 200, body: { ok: true, action } };
    } catch (err) {
      // Not marked as seen: Lethe's retry (same webhook-id) runs it again.
      return { status: 500, body: { ok: false, action: 'failed', error: (err as Error).message } };
    } finally {
      inFlight.delete(id);
    }
  }

  async function processDueCases(): Promise<PullSummary> {
    const summary: PullSummary = { processed: 0, deleted: 0, noDataHeld: 0, activeLicense: 0, notRequired: 0, failed: 0 };
    let cursor: string | undefined;
    do {
      const page: CaseList = await withRetry(async () => {
        const { data, error, response } = await api.GET('/v1/data-deletions', {
          params: { query: { status: 'required', limit: 100, ...(cursor ? { cursor } : {}) } },
        });
        if (!data) throw fail(response, error, 'listing due cases');
        return data;
      });
      for (const c of page.data) {
        summary.processed++;
        try {
          const action = await processCase({
            subscriptionId: c.subscriptionId, applicationId: c.applicationId, reason: c.reason,
            requiredSince: c.requiredSince, webhookId: null,
          });
          if (action === 'deleted') summary.deleted++;
          else if (action === 'no_data_held') summary.noDataHeld++;
          else if (action === 'active_license') summary.activeLicense++;
          else summary.notRequired++;
        } catch {
          summary.failed++;
        }
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return summary;
  }

  return { handle, processDueCases, processCase };
}

/** Node's http: `http.createServer(nodeHttpAdapter(handler))`, or call it inside your own request listener. */
export function nodeHttpAdapter(handler: DeletionHandler, maxBytes = 1024 * 1024) {
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) { res.writeHead(413).end(); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => {
      if (res.writableEnded) return;
      handler.handle(req.headers, Buffer.concat(chunks)).then((r) => {
        res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify(r.body));
      }, (err: Error) => res.writeHead(500).end(JSON.stringify({ ok: false, error: err.message })));
    });
  };
}

/**
 * Fastify: register a raw-body parser for the route (the signature covers the exact bytes), e.g.
 * `app.addContentTypeParser('application/json', { parseAs: 'string' }, (_r, body, done) => done(null, body))`,
 * then `app.post('/webhooks/lethe', fastifyAdapter(handler))`.
 */
export function fastifyAdapter(handler: DeletionHandler) {
  return async (
    request: { headers: Record<string, string | string[] | undefined>; body: unknown; rawBody?: string | Buffer },
    reply: { code(status: number): { send(body: unknown): unknown } },
  ) => {
    const raw = request.rawBody ?? (typeof request.body === 'string' || Buffer.isBuffer(request.body) ? request.body : undefined);
    if (raw === undefined) return reply.code(500).send({ ok: false, error: 'the raw body is needed: register a string body parser' });
    const r = await handler.handle(request.headers, raw);
    return reply.code(r.status).send(r.body);
  };
}

/** Express-style: `app.post('/webhooks/lethe', express.raw({ type: 'application/json' }), expressAdapter(handler))`. */
export function expressAdapter(handler: DeletionHandler) {
  return (
    req: { headers: Record<string, string | string[] | undefined>; body: unknown },
    res: { status(code: number): { json(body: unknown): unknown } },
    next?: (err: unknown) => void,
  ) => {
    const raw = typeof req.body === 'string' || Buffer.isBuffer(req.body) ? req.body : undefined;
    if (raw === undefined) { res.status(500).json({ ok: false, error: 'the raw body is needed: use express.raw()' }); return; }
    handler.handle(req.headers, raw).then((r) => { res.status(r.status).json(r.body); }, (err) => next?.(err));
  };
}
