import { useState, type FormEvent } from 'react';
import { api, type Application } from '../api.ts';
import { loadApplications } from '../apps.ts';
import { Link } from '../router.tsx';
import { ErrorMessage, Show, StatusBadge, Table, useAction, useLoad } from '../ui.tsx';

export function endpointState(a: Application): string {
  if (!a.enabled) return 'disabled';
  if (a.failingSince) return 'failing';
  return a.webhookUrl ? 'ok' : 'no webhook';
}

export function SecretOnce({ secret, label }: { secret: string; label: string }) {
  return (
    <div className="notice" role="status">
      <strong>{label}</strong>
      <p>Shown only now. Store it in the application's configuration.</p>
      <code className="secret" tabIndex={0} aria-label={label}>{secret}</code>
    </div>
  );
}

export function Applications({ query }: { query: URLSearchParams }) {
  const show = query.get('show') ?? '';
  const [version, setVersion] = useState(0);
  const apps = useLoad(loadApplications, [version]);
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const [created, setCreated] = useState<Application | null>(null);
  const create = useAction();

  const submit = (e: FormEvent) => {
    e.preventDefault();
    void create.run(async () => {
      const a = await api<Application>('POST', '/v1/applications', { body: { name: name.trim(), webhookUrl: url.trim() || null } });
      setCreated(a);
      setName('');
      setUrl('');
      setVersion((v) => v + 1);
    });
  };

  return (
    <>
      <h1>Applications{show ? `: ${show}` : ''}</h1>
      <form className="card" onSubmit={submit} aria-labelledby="h-create">
        <h2 id="h-create">Register an application</h2>
        <div className="row">
          <div>
            <label htmlFor="app-name">Name</label>
            <input id="app-name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} />
          </div>
          <div>
            <label htmlFor="app-url">Webhook URL <span className="muted small">(optional)</span></label>
            <input id="app-url" type="url" value={url} onChange={(e) => setUrl(e.target.value)} size={45} placeholder="https://partner.example/hooks/lethe" />
          </div>
          <button type="submit" disabled={create.busy || !name.trim()}>{create.busy ? 'Creating…' : 'Create application'}</button>
        </div>
        <ErrorMessage error={create.error} />
        {created?.webhookSecret && (
          <>
            <p className="success" role="status">Created <Link to={`/applications/${created.id}`}>{created.name}</Link>.</p>
            <SecretOnce secret={created.webhookSecret} label="Webhook signing secret" />
          </>
        )}
      </form>
      <Show state={apps} what="Applications">
        {(list) => {
          const rows = list.filter((a) => !show || endpointState(a) === show);
          return (
            <>
              {show && <p><Link to="/applications">Show all applications</Link></p>}
              <Table<Application & Record<string, unknown>> caption="Applications" rows={rows as Array<Application & Record<string, unknown>>}
                empty={show ? `No application is ${show}.` : 'No applications yet.'}
                columns={[
                  { key: 'name', label: 'Name', render: (a) => <Link to={`/applications/${a.id}`}>{a.name}</Link> },
                  { key: 'state', label: 'Endpoint', render: (a) => <StatusBadge value={endpointState(a)} /> },
                  { key: 'webhookUrl', label: 'Webhook URL' },
                  { key: 'failingSince', label: 'Failing since' },
                  { key: 'createdAt', label: 'Created' },
                ]} />
            </>
          );
        }}
      </Show>
    </>
  );
}
