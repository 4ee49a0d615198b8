import http from 'node:http';
import https from 'node:https';
import { Webhook } from 'standardwebhooks';
import type { LookupFunction } from './ssrf.ts';
import { EXCERPT_READ_BYTES, scrubExcerpt } from './excerpt.ts';

/** Outcomes recorded per attempt (webhook_deliveries.outcome and the metric label). */
export type Outcome = 'delivered' | 'failed' | 'timeout' | 'network_error' | 'refused' | 'gone';

export interface SendResult {
  outcome: Outcome;
  statusCode: number | null;
  /** Our own words only: never the response body, which the receiver controls. */
  error: string | null;
  /** From a Retry-After header on 429/503, in ms from now. */
  retryAfterMs: number | null;
  durationMs: number;
  /** A scrubbed excerpt of a non-2xx response body (see excerpt.ts); null otherwise. */
  excerpt?: string | null;
}

const webhooks = new Map<string, Webhook>();
function signer(secret: string): Webhook {
  let w = webhooks.get(secret);
  if (!w) {
    if (webhooks.size > 10_000) webhooks.clear();
    w = new Webhook(secret);
    webhooks.set(secret, w);
  }
  return w;
}

/**
 * Standard Webhooks headers. `secrets` are whsec_ secrets, newest first; each adds one `v1,<sig>`
 * to webhook-signature (space-separated), so receivers holding either secret verify during rotation.
 */
export function signatureHeaders(id: string, at: Date, body: string, secrets: string[]): Record<string, string> {
  const timestamp = new Date(Math.floor(at.getTime() / 1000) * 1000);
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
    'webhook-signature': secrets.map((s) => signer(s).sign(id, timestamp, body)).join(' '),
  };
}

/** Retry-After as seconds or an HTTP date, in ms from `now`, capped at `capMs`; null when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: Date, capMs: number): number | null {
  if (!value) return null;
  const v = value.trim();
  let ms: number;
  if (/^\d+$/.test(v)) ms = Number(v) * 1000;
  else {
    const t = Date.parse(v);
    if (Number.isNaN(t)) return null;
    ms = t - now.getTime();
  }
  return Math.min(Math.max(ms, 0), capMs);
}

export interface Sender {
  send(url: URL, body: string, headers: Record<string, string>, now: Date): Promise<SendResult>;
  close(): void;
}

const RETRY_AFTER_CAP_MS = 24 * 3_600_000;

/**
 * POSTs with node:http(s): redirects are never followed (a 3xx is a failure), the whole exchange
 * has one timeout, and `lookup` (the SSRF guard) decides which addresses may be connected to.
 */
export function createSender(options: { timeoutMs: number; lookup: LookupFunction | undefined; maxSockets?: number }): Sender {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 256, scheduling: 'fifo' as const };
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);

  function send(url: URL, body: string, headers: Record<string, string>, now: Date): Promise<SendResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    return new Promise<SendResult>((resolve) => {
      let settled = false;
      const done = (r: Omit<SendResult, 'durationMs'>) => {
        if (settled) return;
        settled = true;
        resolve({ ...r, durationMs: elapsed() });
      };
      const mod = url.protocol === 'https:' ? https : http;
      const req = mod.request(url, {
        method: 'POST',
        agent: url.protocol === 'https:' ? httpsAgent : httpAgent,
        ...(options.lookup ? { lookup: options.lookup as never } : {}),
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          'user-agent': 'Lethe-Webhooks/1.0',
          ...headers,
        },
      });
      // One timer bounds the whole exchange, body included; it is cleared when the socket is released.
      const timer = setTimeout(() => {
        done({ outcome: 'timeout', statusCode: null, error: `no response within ${options.timeoutMs} ms`, retryAfterMs: null });
        req.destroy();
      }, options.timeoutMs);
      req.on('close', () => clearTimeout(timer));
      req.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'EUNSAFEADDRESS') {
          done({ outcome: 'refused', statusCode: null, error: `refused by the SSRF guard: ${error.message}`, retryAfterMs: null });
        } else {
          done({ outcome: 'network_error', statusCode: null, error: error.code ?? 'connection failed', retryAfterMs: null });
        }
      });
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        res.on('error', () => {});
        const retryAfter = status === 429 || status === 503
          ? parseRetryAfter(res.headers['retry-after'], now, RETRY_AFTER_CAP_MS) : null;
        if (status >= 200 && status < 300) {
          // Drain and drop the body of a success; the timer still bounds a slow one.
          res.resume();
          done({ outcome: 'delivered', statusCode: status, error: null, retryAfterMs: null });
          return;
        }
        // A failure keeps a short scrubbed excerpt of the first bytes (delivery health); the rest is drained.
        const chunks: Buffer[] = [];
        let read = 0;
        const finish = () => {
          const excerpt = read > 0 ? scrubExcerpt(Buffer.concat(chunks).toString('utf8').replace(/\uFFFD+$/, '')) : null;
          if (status === 410) done({ outcome: 'gone', statusCode: status, error: 'HTTP 410 Gone: endpoint disabled', retryAfterMs: null, excerpt });
          else if (status >= 300 && status < 400) done({ outcome: 'failed', statusCode: status, error: `HTTP ${status}: redirects are not followed`, retryAfterMs: null, excerpt });
          else done({ outcome: 'failed', statusCode: status, error: `HTTP ${status}`, retryAfterMs: retryAfter, excerpt });
        };
        res.on('data', (chunk: Buffer) => {
          if (read >= EXCERPT_READ_BYTES) return;
          const part = chunk.subarray(0, EXCERPT_READ_BYTES - read);
          chunks.push(part);
          read += part.length;
          if (read >= EXCERPT_READ_BYTES) finish();
        });
        res.on('end', finish);
        res.on('close', finish);
      });
      req.end(body);
    });
  }

  return {
    send,
    close() { httpAgent.destroy(); httpsAgent.destroy(); },
  };
}
