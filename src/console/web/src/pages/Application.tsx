import { useState, type FormEvent } from 'react';
import { api, type Application, type DeletionCase, type Page } from '../api.ts';
import { Link } from '../router.tsx';
import { ErrorMessage, Fields, Pager, Show, StatusBadge, Table, autoColumns, useAction, useCursorPages, useLoad } from '../ui.tsx';
import { SecretOnce, endpointState } from './Applications.tsx';

type Row = Record<string, unknown>;

export function ApplicationPage({ id }: { id: string }) {
  const [version, setVersion] = useState(0);
  const app = useLoad(() => api<Application>('GET', `/v1/applications/${id}`), [id, version]);
  const pages = useCursorPages();
  const deliveries = useLoad(() => api<Page<Row>>('GET', `/v1/applications/${id}/deliveries`, { query: { limit: 50, cursor: pages.cursor } }), [id, pages.cursor, version]);
  const cases = useLoad(() => api<Page<DeletionCase>>('GET', '/v1/data-deletions', { query: { applicationId: id, limit: 1 } }), [id]);
  const [url, setUrl] = useState<string | null>(null);
  const [secret, setSecret] = useState<string | null>(null);
  const [key, setKey] = useState<string | null>(null);
  const edit = useAction();
  const toggle = useAction();
  const rotate = useAction();
  const issue = useAction();

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
              setVersion((v) => v + 1);
            });
          };
          return (
            <>
              <h1>{a.name}</h1>
              <section className="card" aria-labelledby="h-app">
                <h2 id="h-app">Endpoint <StatusBadge value={endpointState(a)} /></h2>
                <Fields label="Application" value={a as unknown as Row} />
                <p>{cases.data ? <Link to={`/cases?applicationId=${id}`}>This application's deletion cases</Link> : null}</p>
              </section>
              <section className="card" aria-labelledby="h-edit">
                <h2 id="h-edit">Settings</h2>
                <form className="row" onSubmit={saveUrl}>
                  <div>
                    <label htmlFor="webhook-url">Webhook URL</label>
                    <input id="webhook-url" type="url" size={50} value={url ?? a.webhookUrl ?? ''} onChange={(e) => setUrl(e.target.value)} />
                  </div>
                  <button type="submit" disabled={edit.busy || url === null}>Save URL</button>
                </form>
                <ErrorMessage error={edit.error} />
                <div className="actions">
                  <button type="button" className="secondary" disabled={toggle.busy}
                    onClick={() => void toggle.run(async () => { await api('PATCH', `/v1/applications/${id}`, { body: { enabled: !a.enabled } }); setVersion((v) => v + 1); })}>
                    {a.enabled ? 'Disable endpoint' : 'Enable endpoint'}
                  </button>
                  <button type="button" className="secondary" disabled={rotate.busy}
                    onClick={() => {
                      if (!window.confirm('Rotate the webhook signing secret? The application must use the new one.')) return;
                      void rotate.run(async () => {
                        const r = await api<Row>('POST', `/v1/applications/${id}/rotate-secret`, { body: {} });
                        setSecret(String(r.webhookSecret ?? r.secret ?? ''));
                        setVersion((v) => v + 1);
                      });
                    }}>Rotate secret</button>
                  <button type="button" className="secondary" disabled={issue.busy}
                    onClick={() => void issue.run(async () => {
                      const r = await api<Row>('POST', '/v1/api-keys', { body: { kind: 'application', applicationIds: [id] } });
                      setKey(String(r.key));
                    })}>Issue an API key</button>
                </div>
                <ErrorMessage error={toggle.error} what="Enabling or disabling" />
                <ErrorMessage error={rotate.error} what="Secret rotation" />
                <ErrorMessage error={issue.error} />
                {secret && <SecretOnce secret={secret} label="New webhook signing secret" />}
                {key && <SecretOnce secret={key} label="New application API key" />}
              </section>
            </>
          );
        }}
      </Show>
      {!app.error && (
        <section className="card" aria-labelledby="h-deliveries">
          <h2 id="h-deliveries">Deliveries</h2>
          <Show state={deliveries} what="The delivery log">
            {(page) => (
              <>
                <Table caption="Deliveries" rows={page.data} empty="No deliveries yet."
                  columns={autoColumns(page.data, ['applicationId']).map((c) => (c.key === 'outcome' || c.key === 'status'
                    ? { ...c, render: (r: Row) => <StatusBadge value={String(r[c.key])} /> } : c))} />
                <Pager label="Delivery pages" hasPrev={pages.hasPrev} hasNext={!!page.nextCursor} onPrev={pages.prev} onNext={() => pages.next(page.nextCursor)} />
              </>
            )}
          </Show>
        </section>
      )}
    </>
  );
}
