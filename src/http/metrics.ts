import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  deletions: Counter<'outcome'>;
  /** Post-commit flushes of the erasure-journal file (one flush serves every deletion committed before it started). */
  journalFlushes: Counter<'outcome'>;
  journalLines: Counter;
  webhookDeliveries: Counter<'outcome'>;
  casesByState: Gauge<'state'>;
  overdueCases: Gauge;
}

/** One registry per process (and per test app), so two apps in one test never collide. */
export function createMetrics(withDefaults = true): Metrics {
  const registry = new Registry();
  if (withDefaults) collectDefaultMetrics({ register: registry, prefix: 'lethe_' });
  return {
    registry,
    httpRequests: new Counter({
      name: 'lethe_http_requests_total', help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'], registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'lethe_http_request_duration_seconds', help: 'HTTP request latency by route and status',
      labelNames: ['method', 'route', 'status'], registers: [registry],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    }),
    deletions: new Counter({
      name: 'lethe_customer_deletions_total', help: 'Customer deletions by outcome',
      labelNames: ['outcome'], registers: [registry],
    }),
    journalFlushes: new Counter({
      name: 'lethe_erasure_journal_flushes_total', help: 'Erasure-journal file flushes (append + fsync) by outcome: appended, empty, failed',
      labelNames: ['outcome'], registers: [registry],
    }),
    journalLines: new Counter({
      name: 'lethe_erasure_journal_lines_total', help: 'Lines appended to the erasure-journal file by this process', registers: [registry],
    }),
    webhookDeliveries: new Counter({
      name: 'lethe_webhook_deliveries_total', help: 'Webhook delivery attempts by outcome',
      labelNames: ['outcome'], registers: [registry],
    }),
    casesByState: new Gauge({
      name: 'lethe_deletion_cases', help: 'Deletion cases by state (refreshed on scrape)',
      labelNames: ['state'], registers: [registry],
    }),
    overdueCases: new Gauge({
      name: 'lethe_deletion_cases_overdue', help: 'Required cases unconfirmed past the overdue threshold',
      registers: [registry],
    }),
  };
}
