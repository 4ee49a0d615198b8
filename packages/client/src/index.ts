// @lethe/client: a typed client for the Lethe API (types generated from /openapi.json by
// openapi-typescript, calls through openapi-fetch) and the deletion handler for partner apps.
import createClient, { type Client } from 'openapi-fetch';
import type { paths } from './schema.ts';

export type { components, operations, paths } from './schema.ts';
export {
  createDeletionHandler, expressAdapter, fastifyAdapter, nodeHttpAdapter, memoryWebhookIdStore,
  type DeletionEvent, type DeletionHandler, type DeletionHandlerOptions, type DeletionOutcome, type HandlerResult,
  type PullSummary, type WebhookIdStore,
} from './deletion-handler.ts';

export type LetheClient = Client<paths>;

export interface LetheClientOptions {
  /** Where Lethe answers, e.g. https://lethe.example.com (no /v1). */
  baseUrl: string;
  /** An API key: `Authorization: Bearer <apiKey>` on every call. */
  apiKey: string;
  /** A fetch implementation (defaults to the global one). */
  fetch?: typeof globalThis.fetch;
}

/** A typed client: `client.GET('/v1/data-deletions', { params: { query: { status: 'required' } } })`. */
export function createLetheClient(options: LetheClientOptions): LetheClient {
  return createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    headers: { authorization: `Bearer ${options.apiKey}` },
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
}
