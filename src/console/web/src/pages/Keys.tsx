import { useId, useState, type FormEvent } from 'react';
import { api, type Page } from '../api.ts';
import { loadApplications, nameOf } from '../apps.ts';
import { useConfirm } from '../confirm.tsx';
import { ShortId } from '../format.tsx';
import { ErrorMessage, Show, StatusBadge, Table, useAction, useLoad } from '../ui.tsx';
import { SecretOnce } from './Applications.tsx';

interface ApiKey {
  id: string; kind: 'operator' | 'application'; applicationIds: string[]; label: string | null; createdAt: string;
  expiresAt: string | null; lastUsedAt: string | null; revokedAt: string | null;
}

async function loadKeys(): Promise<ApiKey[]> {
  const out: ApiKey[] = [];
  let cursor: string | null = null;
  do {
    const page: Page<ApiKey> = await api('GET', '/v1/api-keys', { query: { limit: 500, cursor } });
    out.push(...page.data);
    cursor = page.nextCursor;
  } while (cursor && out.length < 5000);
  return out;
}

/** A key's label, edited in place: Edit label → a field with Save and Cancel (Escape cancels). */
function LabelCell({ k, onSaved }: { k: ApiKey; onSaved: () => void }) {
  const [draft, setDraft] = useState<string | null>(null);
  const save = useAction();
  const id = useId();
  if (draft === null) {
    return (
      <span className="label-cell">
        {k.label ?? <span className="muted">no label</span>}{' '}
        <button type="button" className="link" onClick={() => { save.clear(); setDraft(k.label ?? ''); }}>Edit label</button>
      </span>
    );
  }
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void save.run(async () => {
      await api('PATCH', `/v1/api-keys/${k.id}`, { body: { label: draft.trim() || null } });
      setDraft(null);
      onSaved();
    });
  };
  return (
    <form className="row label-edit" onSubmit={submit} onKeyDown={(e) => { if (e.key === 'Escape') setDraft(null); }}>
      <div className="grow">
        <label htmlFor={id}>Label</label>
        <input id={id} value={draft} maxLength={200} autoFocus onChange={(e) => setDraft(e.target.value)} />
      </div>
      <button type="submit" disabled={save.busy}>Save label</button>
      <button type="button" className="secondary" onClick={() => setDraft(null)}>Cancel</button>
      <ErrorMessage error={save.error} />
    </form>
  );
}

/** API keys: who can call Lethe. Keys are shown once at creation; here only their metadata. */
export function Keys() {
  const [version, setVersion] = useState(0);
  const keys = useLoad(loadKeys, [version]);
  const apps = useLoad(loadApplications, []);
  const confirm = useConfirm();
  const create = useAction();
  const [created, setCreated] = useState<string | null>(null);
  return (
    <>
      <h1>API keys</h1>
      <div className="actions">
        <button type="button" className="secondary" disabled={create.busy} onClick={() => void create.run(async () => {
          const r = await api<{ key: string }>('POST', '/v1/api-keys', { body: { kind: 'operator' } });
          setCreated(r.key);
          setVersion((v) => v + 1);
        })}>Issue an operator key</button>
      </div>
      <ErrorMessage error={create.error} />
      {created && <SecretOnce secret={created} label="New operator API key" />}
      <Show state={keys} what="The key list">
        {(list) => (
          <Table<ApiKey & Record<string, unknown>> caption="API keys" rows={list as Array<ApiKey & Record<string, unknown>>} className="cards-on-phone"
            empty="No keys."
            columns={[
              { key: 'label', label: 'Label', render: (k) => <LabelCell k={k} onSaved={() => setVersion((v) => v + 1)} /> },
              { key: 'kind', label: 'Kind' },
              { key: 'applicationIds', label: 'Applications', render: (k) => (k.kind === 'operator' ? 'all (operator)' : k.applicationIds.map((a) => nameOf(apps.data, a)).join(', ')) },
              { key: 'state', label: 'State', render: (k) => <StatusBadge value={k.revokedAt ? 'revoked' : k.expiresAt && new Date(k.expiresAt) < new Date() ? 'expired' : 'active'} /> },
              { key: 'lastUsedAt', label: 'Last used' },
              { key: 'createdAt', label: 'Created' },
              { key: 'id', label: 'Id', render: (k) => <ShortId id={k.id} /> },
              { key: 'revoke', label: 'Action', render: (k) => (k.revokedAt ? null : (
                <button type="button" className="secondary" onClick={() => confirm.ask({
                  title: `Revoke the ${k.kind} key ${k.label ? `“${k.label}”` : k.id.slice(0, 8)}?`,
                  body: <p>Every request with this key is refused within a second, on every instance. {k.kind === 'application' ? 'The application cannot confirm deletions until it gets a new key.' : 'If you are signed in with it, you will be signed out.'} This cannot be undone.</p>,
                  confirmLabel: 'Revoke key', danger: true,
                  run: async () => { await api('DELETE', `/v1/api-keys/${k.id}`); setVersion((v) => v + 1); },
                })}>Revoke…</button>
              )) },
            ]} />
        )}
      </Show>
      {confirm.dialog}
    </>
  );
}
