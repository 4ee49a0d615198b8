import { useState, type FormEvent } from 'react';
import { api, type Application, type DeletionCase, type Page } from '../api.ts';
import { ENDPOINT_DISABLE_REASONS, useConfirm } from '../confirm.tsx';
import { failureText, type CaseDeliveryHealth, type DeliveryHealth } from '../delivery.tsx';
import { ShortId } from '../format.tsx';
import { Link } from '../router.tsx';
import { ErrorMessage, Fields, Pager, Show, StatusBadge, Table, formatTime, useAction, useCursorPages, useLoad } from '../ui.tsx';
import { SecretOnce, endpointState } from './Applications.tsx';

type Row = Record<string, unknown>;

interface AppHealth {
  enabled: boolean; disabledReason: string | null; failingSince: string | null; pending: number; failing: number;
  nextRetryAt: string | null; last: DeliveryHealth | null;
}

function HealthCard({ id, version, onChange }: { id: string; version: number; onChange: () => void }) {
  const health = useLoad(() => api<AppHealth>('GET', `/v1/applications/${id}/delivery-health`), [id, version]);
  const failing = useLoad(() => api<Page<CaseDeliveryHealth>>('GET', '/v1/delivery-health', { query: { applicationId: id, failing: 'true', limit: 50 } }), [id, version]);
  const retry = useAction();
  const test = useAction();
  const [sent, setSent] = useState<string | null>(null);
  return (
    <section className="card" aria-labelledby="h-health">
      <h2 id="h-health">Delivery health</h2>
      <Show state={health} what="Delivery health">
        {(h) => (
          <>
            {h.last?.failing || h.failing > 0 ? (
              <div className="error" role="status">
                <strong>Deliveries are failing</strong>
                <p>
                  {h.failing} webhook(s) not delivered{h.failingSince ? <>, failing since <time dateTime={h.failingSince}>{formatTime(h.failingSince)}</time></> : null}.
                  {h.last && <> Last attempt: {failureText(h.last)} at {formatTime(h.last.lastAttemptAt)}.</>}
                  {h.nextRetryAt ? <> Next retry <time dateTime={h.nextRetryAt}>{formatTime(h.nextRetryAt)}</time>.</> : null}
                </p>
                {h.last?.responseExcerpt && <p>Response: <q className="excerpt">{h.last.responseExcerpt}</q></p>}
              </div>
            ) : h.last ? (
              <p className="success" role="status">Last delivery {h.last.status === 'delivered' ? 'accepted' : h.last.status} at {formatTime(h.last.lastAttemptAt)}. {h.pending} waiting.</p>
            ) : <p className="muted">Nothing sent yet.</p>}
            {!h.enabled && <p className="notice">The endpoint is disabled ({h.disabledReason}); {h.pending} webhook(s) wait until it is enabled.</p>}
          </>
        )}
      </Show>
      <Show state={failing} what="Failing deliveries">
        {(page) => page.data.length === 0 ? null : (
          <Table<CaseDeliveryHealth & Row> caption="Failing deliveries" rows={page.data as Array<CaseDeliveryHealth & Row>} className="cards-on-phone"
            columns={[
              { key: 'lastOutcome', label: 'Outcome', render: (r) => <><StatusBadge value="failing" /> {failureText(r)}</> },
              { key: 'responseExcerpt', label: 'Response', render: (r) => (r.responseExcerpt ? <q className="excerpt">{r.responseExcerpt}</q> : <span className="muted">—</span>) },
              { key: 'nextRetryAt', label: 'Next retry', render: (r) => (r.nextRetryAt ? formatTime(r.nextRetryAt) : 'no more retries') },
              { key: 'case', label: 'Case', render: (r) => <Link to={`/cases/${r.caseId}?subscriptionId=${r.subscriptionId}&applicationId=${id}`}>Case of <ShortId id={r.subscriptionId} /></Link> },
              { key: 'attempts', label: 'Attempts' },
              { key: 'retry', label: 'Action', render: (r) => (
                <button type="button" className="secondary" disabled={retry.busy}
                  onClick={() => void retry.run(async () => { await api('POST', `/v1/applications/${id}/deliveries/${r.webhookId}/retry`, { body: {} }); onChange(); })}>
                  Retry now
                </button>
              ) },
            ]} />
        )}
      </Show>
      <ErrorMessage error={retry.error} what="Retry" />
      <div className="actions">
        <button type="button" className="secondary" disabled={test.busy}
          onClick={() => void test.run(async () => {
            const r = await api<{ webhookId: string }>('POST', `/v1/applications/${id}/test-webhook`, { body: {} });
            setSent(r.webhookId);
            setTimeout(onChange, 1500);
          })}>Send a test webhook</button>
      </div>
      {sent && <p className="success" role="status">Test webhook queued (<code>{sent}</code>); its result appears in the delivery log. It is not a deletion notice.</p>}
      <ErrorMessage error={test.error} what="The test webhook" />
    </section>
  );
}

function ConfirmationHistory({ id }: { id: string }) {
  const history = useLoad(() => api<Page<Row>>('GET', '/v1/data-deletions/confirmations', { query: { applicationId: id, limit: 100 } }), [id]);
  return (
    <section className="card" aria-labelledby="h-confirmations">
      <h2 id="h-confirmations">Confirmation history</h2>
      <Show state={history} what="The confirmation history">
        {(page) => (
          <Table caption="Confirmations" rows={page.data} empty="This application has confirmed no deletion yet." className="cards-on-phone"
            columns={[
              { key: 'confirmedAt', label: 'Confirmed' },
              { key: 'outcome', label: 'Outcome', render: (r) => <StatusBadge value={String(r.outcome ?? 'deleted')} /> },
              { key: 'subscriptionId', label: 'Customer', render: (r) => <ShortId id={String(r.subscriptionId)} /> },
              { key: 'reason', label: 'Why it was required' },
              { key: 'requiredSince', label: 'Required since' },
            ]} />
        )}
      </Show>
    </section>
  );
}

export function ApplicationPage({ id }: { id: string }) {
  const [version, setVersion] = useState(0);
  const refresh = () => setVersion((v) => v + 1);
  const app = useLoad(() => api<Application>('GET', `/v1/applications/${id}`), [id, version]);
  const pages = useCursorPages();
  const deliveries = useLoad(() => api<Page<Row>>('GET', `/v1/applications/${id}/deliveries`, { query: { limit: 50, cursor: pages.cursor } }), [id, pages.cursor, version]);
  const cases = useLoad(() => api<Page<DeletionCase>>('GET', '/v1/data-deletions', { query: { applicationId: id, limit: 1 } }), [id]);
  const [url, setUrl] = useState<string | null>(null);
  const [secret, setSecret] = useState<string | null>(null);
  const [key, setKey] = useState<string | null>(null);
  const edit = useAction();
  const enable = useAction();
  const issue = useAction();
  const confirm = useConfirm();

  return (
    <>
      <p className="small"><Link to="/applications">← Applications</Link></p>
      <Show state={app} what="The application">
        {(a) => {
          const saveUrl = (e: FormEvent) => {
            e.preventDefault();
            void edit.run(async () => {
              await api('PATCH', `/v1/applications/${id}`, { body: { webhookUrl: (url ?? a.webhookUrl ?? '').trim() || null } });
              setUrl(null);
              refresh();
            });
          };
          return (
            <>
              <h1>{a.name}</h1>
              <section className="card" aria-labelledby="h-app">
                <h2 id="h-app">Endpoint <StatusBadge value={endpointState(a)} /></h2>
                <Fields label="Application" value={a as unknown as Row} omit={['id']} />
                <p className="small">Application id <code>{a.id}</code></p>
                <p>{cases.data ? <Link to={`/cases?applicationId=${id}`}>This application's deletion cases</Link> : null}
                  {' · '}<Link to={`/cases?applicationId=${id}&delivery=failing`}>cases whose delivery is failing</Link></p>
              </section>
              <HealthCard id={id} version={version} onChange={refresh} />
              <section className="card" aria-labelledby="h-edit">
                <h2 id="h-edit">Settings</h2>
                <form className="row" onSubmit={saveUrl}>
                  <div className="grow">
                    <label htmlFor="webhook-url">Webhook URL</label>
                    <input id="webhook-url" type="url" value={url ?? a.webhookUrl ?? ''} onChange={(e) => setUrl(e.target.value)} />
                  </div>
                  <button type="submit" disabled={edit.busy || url === null}>Save URL</button>
                </form>
                <ErrorMessage error={edit.error} />
                <div className="actions">
                  {a.enabled ? (
                    <button type="button" className="secondary" onClick={() => confirm.ask({
                      title: `Disable the endpoint of ${a.name}?`,
                      body: <p>No webhook is sent to this application until it is enabled again. Deletion notices wait and go out on re-enabling; none is lost.</p>,
                      confirmLabel: 'Disable endpoint', danger: true, reasons: ENDPOINT_DISABLE_REASONS,
                      run: async ({ reason }) => { await api('POST', `/v1/applications/${id}/disable`, { body: { reason } }); refresh(); },
                    })}>Disable endpoint…</button>
                  ) : (
                    <button type="button" className="secondary" disabled={enable.busy}
                      onClick={() => void enable.run(async () => { await api('PATCH', `/v1/applications/${id}`, { body: { enabled: true } }); refresh(); })}>
                      Enable endpoint
                    </button>
                  )}
                  <button type="button" className="secondary" onClick={() => confirm.ask({
                    title: 'Rotate the webhook signing secret?',
                    body: <p>A new secret signs every webhook from now on. The old one also signs for 24 hours, so the application has a day to switch.</p>,
                    confirmLabel: 'Rotate secret',
                    run: async () => {
                      const r = await api<Row>('POST', `/v1/applications/${id}/rotate-secret`, { body: {} });
                      setSecret(String(r.webhookSecret ?? ''));
                      refresh();
                    },
                  })}>Rotate secret…</button>
                  <button type="button" className="secondary" disabled={issue.busy}
                    onClick={() => void issue.run(async () => {
                      const r = await api<Row>('POST', '/v1/api-keys', { body: { kind: 'application', applicationIds: [id] } });
                      setKey(String(r.key));
                    })}>Issue an API key</button>
                </div>
                <ErrorMessage error={enable.error} what="Enabling" />
                <ErrorMessage error={issue.error} />
                {secret && <SecretOnce secret={secret} label="New webhook signing secret" />}
                {key && <SecretOnce secret={key} label="New application API key" />}
              </section>
            </>
          );
        }}
      </Show>
      {!app.error && (
        <>
          <section className="card" aria-labelledby="h-deliveries">
            <h2 id="h-deliveries">Delivery log</h2>
            <Show state={deliveries} what="The delivery log">
              {(page) => (
                <>
                  <Table caption="Deliveries" rows={page.data} empty="No deliveries yet." className="cards-on-phone"
                    columns={[
                      { key: 'attemptedAt', label: 'When' },
                      { key: 'outcome', label: 'Outcome', render: (r) => <StatusBadge value={String(r.outcome)} /> },
                      { key: 'statusCode', label: 'HTTP' },
                      { key: 'error', label: 'Error' },
                      { key: 'eventType', label: 'Event' },
                      { key: 'caseId', label: 'Case', render: (r) => (r.caseId ? <Link to={`/cases/${String(r.caseId)}?applicationId=${id}`}><ShortId id={String(r.caseId)} /></Link> : <span className="muted">—</span>) },
                      { key: 'attempt', label: 'Attempt' },
                      { key: 'webhookId', label: 'Webhook id', render: (r) => <ShortId id={String(r.webhookId)} /> },
                    ]} />
                  <Pager label="Delivery pages" hasPrev={pages.hasPrev} hasNext={!!page.nextCursor} onPrev={pages.prev} onNext={() => pages.next(page.nextCursor)} />
                </>
              )}
            </Show>
          </section>
          <ConfirmationHistory id={id} />
        </>
      )}
      {confirm.dialog}
    </>
  );
}
