import { api, type Page } from './api.ts';
import { StatusBadge, formatTime, useLoad } from './ui.tsx';

export interface DeliveryHealth {
  webhookId: string; eventType: string; status: string; attempts: number; lastOutcome: string | null;
  lastStatusCode: number | null; lastError: string | null; lastAttemptAt: string | null; nextRetryAt: string | null;
  responseExcerpt: string | null; failing: boolean;
}
export interface CaseDeliveryHealth extends DeliveryHealth { caseId: string; subscriptionId: string; applicationId: string; caseStatus: string }

/** Delivery health of the given cases (one request), keyed by case id. */
export function useCaseHealth(caseIds: string[]) {
  const key = caseIds.join(',');
  return useLoad(async () => {
    const map = new Map<string, CaseDeliveryHealth>();
    if (caseIds.length === 0) return map;
    const qs = new URLSearchParams();
    for (const id of caseIds) qs.append('caseId', id);
    qs.set('limit', '500');
    const page = await api<Page<CaseDeliveryHealth>>('GET', `/v1/delivery-health?${qs}`);
    for (const h of page.data) map.set(h.caseId, h);
    return map;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
}

/** What an HTTP failure was, in words: "HTTP 500", "timed out", "connection refused". */
export function failureText(h: Pick<DeliveryHealth, 'lastStatusCode' | 'lastOutcome' | 'lastError'>): string {
  if (h.lastStatusCode) return `HTTP ${h.lastStatusCode}`;
  if (h.lastOutcome === 'timeout') return 'timed out';
  if (h.lastOutcome === 'refused') return 'refused (private address)';
  if (h.lastOutcome === 'network_error') return `network error${h.lastError ? ` (${h.lastError})` : ''}`;
  return h.lastOutcome ?? 'failed';
}

/** One line of delivery state: never "notified" when the endpoint did not accept it. */
export function DeliveryState({ health, lastNotifiedDay }: { health: DeliveryHealth | undefined; lastNotifiedDay?: unknown }) {
  if (!health) return lastNotifiedDay ? <span>Queued {String(lastNotifiedDay)}</span> : <span className="muted">not notified</span>;
  if (health.failing) {
    return (
      <span className="delivery-failing">
        <StatusBadge value="failing" /> Delivery failing: {failureText(health)}
        {health.nextRetryAt ? <> · next retry <time dateTime={health.nextRetryAt}>{formatTime(health.nextRetryAt)}</time></> : ' · no more retries'}
        {health.responseExcerpt && <><br /><q className="excerpt">{health.responseExcerpt}</q></>}
      </span>
    );
  }
  if (health.status === 'delivered' && health.lastAttemptAt) {
    return <span><StatusBadge value="delivered" /> Delivered <time dateTime={health.lastAttemptAt}>{formatTime(health.lastAttemptAt)}</time></span>;
  }
  return <span><StatusBadge value="pending" /> Sending{health.nextRetryAt ? <> at <time dateTime={health.nextRetryAt}>{formatTime(health.nextRetryAt)}</time></> : null}</span>;
}
