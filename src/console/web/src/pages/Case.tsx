import { api, ApiError, type DeletionCase, type Page } from '../api.ts';
import { loadApplications, nameOf } from '../apps.ts';
import { Link } from '../router.tsx';
import { DeliveryState, useCaseHealth } from '../delivery.tsx';
import { ErrorMessage, Fields, Show, StatusBadge, Table, formatTime, useLoad } from '../ui.tsx';

type Row = Record<string, unknown>;

async function loadCase(id: string, query: URLSearchParams): Promise<DeletionCase> {
  // There is no GET /v1/data-deletions/{id}: the case page's URL carries the customer and
  // application ids (never personal data), which narrow the list to this one case.
  const filter = { subscriptionId: query.get('subscriptionId') ?? undefined, applicationId: query.get('applicationId') ?? undefined };
  let cursor: string | null = null;
  for (let i = 0; i < 50; i++) {
    const page: Page<DeletionCase> = await api('GET', '/v1/data-deletions', { query: { ...filter, limit: 500, cursor } });
    const hit = page.data.find((c) => c.id === id);
    if (hit) return hit;
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  throw new ApiError(404, 'Not found', 'No deletion case with this id', 'not_found', null);
}

interface Deliveries { rows: Row[]; linked: boolean }

/**
 * Delivery attempts of this case. Attempts name their case when the API says so (caseId);
 * otherwise the page shows the application's data_deletion.required attempts since the case
 * became required, and says so.
 */
async function loadDeliveries(c: DeletionCase): Promise<Deliveries> {
  if (!c.requiredSince) return { rows: [], linked: true };
  const since = new Date(c.requiredSince).getTime();
  const out: Row[] = [];
  let linked = false;
  let cursor: string | null = null;
  for (let i = 0; i < 20; i++) {
    const page: Page<Row> = await api('GET', `/v1/applications/${c.applicationId}/deliveries`, { query: { limit: 500, cursor } });
    for (const d of page.data) {
      if ('caseId' in d) { linked = true; if (d.caseId === c.id) out.push(d); continue; }
      if (d.eventType && d.eventType !== 'data_deletion.required') continue;
      if (new Date(String(d.attemptedAt)).getTime() >= since) out.push(d);
    }
    cursor = page.nextCursor;
    // Newest first: stop once past the case's start.
    const last = page.data[page.data.length - 1];
    if (!cursor || (last && new Date(String(last.attemptedAt)).getTime() < since)) break;
  }
  return { rows: out, linked };
}

interface Step { at: string | null | undefined; label: string; future?: boolean; detail?: string }

function timeline(c: DeletionCase, deliveries: Row[] | null): Step[] {
  const steps: Step[] = [];
  const opened = (c.openedAt ?? c.createdAt) as string | undefined;
  if (opened) steps.push({ at: opened, label: 'Case opened' });
  if (c.graceEndsAt) steps.push({ at: c.graceEndsAt, label: 'Grace period ends', future: new Date(c.graceEndsAt).getTime() > Date.now() });
  if (c.revokedAt) steps.push({ at: c.revokedAt as string, label: 'Revoked: a new license arrived' });
  if (c.requiredSince) steps.push({ at: c.requiredSince, label: `Deletion required${c.reason ? ` (${c.reason})` : ''}` });
  for (const d of deliveries ?? []) {
    const at = (d.attemptedAt ?? d.createdAt ?? d.sentAt) as string | undefined;
    const status = d.statusCode ?? d.lastStatusCode;
    steps.push({
      at, label: `Notification ${d.outcome ?? d.status ?? 'attempt'}${d.attempt ? ` (attempt ${String(d.attempt)})` : ''}`,
      detail: [status ? `HTTP ${String(status)}` : '', d.error ? String(d.error) : ''].filter(Boolean).join(' · '),
    });
  }
  if (c.lastNotifiedDay && (deliveries ?? []).length === 0) {
    steps.push({ at: `${String(c.lastNotifiedDay)}T23:59:59Z`, label: `Last notified on ${String(c.lastNotifiedDay)}` });
  }
  if (c.confirmedAt) steps.push({ at: c.confirmedAt, label: 'Confirmed by the application', detail: c.confirmedByKeyId ? `key ${c.confirmedByKeyId}` : '' });
  return steps.sort((a, b) => String(a.at ?? '').localeCompare(String(b.at ?? '')));
}

export function CasePage({ id, query }: { id: string; query: URLSearchParams }) {
  const kase = useLoad(() => loadCase(id, query), [id]);
  const deliveries = useLoad(async () => (kase.data ? loadDeliveries(kase.data) : null), [kase.data]);
  const apps = useLoad(loadApplications, []);
  const health = useCaseHealth([id]);
  return (
    <>
      <p className="small"><Link to="/cases">← Deletion cases</Link></p>
      <h1>Deletion case</h1>
      <Show state={kase} what="The deletion case">
        {(c) => (
          <>
            <section className="card" aria-labelledby="h-case">
              <h2 id="h-case"><StatusBadge value={c.status} /> {nameOf(apps.data, c.applicationId)}</h2>
              <p>Delivery: {health.data ? <DeliveryState health={health.data.get(id)} lastNotifiedDay={c.lastNotifiedDay} /> : '…'}</p>
              <Fields label="Case" value={c} omit={['deliveries', 'notifications', 'attempts', 'lastNotifiedDay']} />
              <p>
                <Link to={`/cases?subscriptionId=${c.subscriptionId}`}>Other cases of this customer</Link>
                {' · '}<Link to={`/applications/${c.applicationId}`}>The application</Link>
              </p>
            </section>
            <section className="card" aria-labelledby="h-timeline">
              <h2 id="h-timeline">Timeline</h2>
              <ol className="timeline" aria-label="Case timeline">
                {timeline(c, deliveries.data?.rows ?? null).map((s, i) => (
                  <li key={i} className={s.future ? 'future' : undefined}>
                    <strong>{s.label}</strong>{' '}
                    <span className="muted">{s.at ? formatTime(s.at) : ''}{s.future ? ' (upcoming)' : ''}</span>
                    {s.detail && <div className="small">{s.detail}</div>}
                  </li>
                ))}
              </ol>
              {deliveries.error ? <ErrorMessage error={deliveries.error} what="The delivery log" /> : null}
              {deliveries.loading && <p className="loading" role="status">Loading deliveries…</p>}
              {deliveries.data && deliveries.data.rows.length > 0 && (
                <>
                  <h3>Delivery attempts</h3>
                  {!deliveries.data.linked && (
                    <p className="muted small">Attempts of <code>data_deletion.required</code> webhooks to this application since the case became required
                      (the delivery log does not name the case of each attempt).</p>
                  )}
                  <Table caption="Delivery attempts" rows={deliveries.data.rows} className="cards-on-phone"
                    columns={[{ key: 'attemptedAt', label: 'When' }, { key: 'attempt', label: 'Attempt' },
                      { key: 'outcome', label: 'Outcome', render: (d) => <StatusBadge value={String(d.outcome ?? '')} /> },
                      { key: 'statusCode', label: 'HTTP status' }, { key: 'durationMs', label: 'ms' }, { key: 'error', label: 'Error' },
                      { key: 'webhookId', label: 'Webhook id', render: (d) => <code>{String(d.webhookId ?? '')}</code> }]} />
                </>
              )}
              {deliveries.data && deliveries.data.rows.length === 0 && c.requiredSince && <p className="empty">No delivery attempt yet.</p>}
            </section>
          </>
        )}
      </Show>
    </>
  );
}
