import { useEffect, useState, type FormEvent } from 'react';
import { api } from '../api.ts';
import { ErrorMessage, Show, formatValue, humanize, useAction, useLoad } from '../ui.tsx';

type SettingsBody = Record<string, unknown>;
const ACTIONS = ['nullify', 'mask', 'keep'];
const FILE_ACTIONS = ['delete', 'keep'];
const READ_ONLY = ['policyVersion', 'updatedAt', 'redactionPolicyOverrides'];
const actionsFor = (key: string) => (/photo|file/i.test(key) ? FILE_ACTIONS : ACTIONS);
const HELP: Record<string, string> = {
  automaticPersonalDataDeletion: 'Redact personal fields, delete stored files and the activity log when a customer is deleted.',
  gracePeriodDays: 'Days between the last license ending and the deletion becoming required (0 allowed).',
  notificationTime: 'Local time (HH:MM) of the daily deletion-required notification.',
  notificationTimeZone: 'IANA time zone of the notification time, e.g. Europe/Berlin.',
  backupRetentionDays: 'Days a sealed pre-deletion backup is kept.',
  overdueAfterDays: 'Days after which an unconfirmed required case counts as overdue.',
};

/** The policy as rows "record.field" → action, whichever shape the API uses. */
function policyRows(policy: unknown): Array<{ key: string; action: string; allowed: string[] }> {
  if (Array.isArray(policy)) {
    return policy.map((p: Record<string, unknown>) => ({
      key: String(p.key ?? p.field), action: String(p.action),
      allowed: Array.isArray(p.allowed) ? p.allowed.map(String) : ACTIONS,
    }));
  }
  if (policy && typeof policy === 'object') {
    return Object.entries(policy as Record<string, unknown>).map(([key, v]) => (v && typeof v === 'object'
      ? { key, action: String((v as Record<string, unknown>).action), allowed: Array.isArray((v as Record<string, unknown>).allowed) ? ((v as Record<string, unknown>).allowed as unknown[]).map(String) : ACTIONS }
      : { key, action: String(v), allowed: actionsFor(key) }));
  }
  return [];
}

function Editor({ initial, onSaved }: { initial: SettingsBody; onSaved: (s: SettingsBody) => void }) {
  const [draft, setDraft] = useState<SettingsBody>(initial);
  const [policy, setPolicy] = useState(() => policyRows(initial.redactionPolicy));
  const [saved, setSaved] = useState(false);
  const [confirmKeep, setConfirmKeep] = useState(false);
  const overrides = (initial.redactionPolicyOverrides ?? {}) as Record<string, string>;
  const [resets, setResets] = useState<string[]>([]);
  const save = useAction();
  useEffect(() => { setDraft(initial); setPolicy(policyRows(initial.redactionPolicy)); setResets([]); }, [initial]);

  const scalarKeys = Object.keys(initial).filter((k) => k !== 'redactionPolicy' && !READ_ONLY.includes(k) && !/At$/.test(k) && typeof initial[k] !== 'object');
  const readOnly = Object.keys(initial).filter((k) => READ_ONLY.includes(k) && k !== 'redactionPolicyOverrides');
  const original = policyRows(initial.redactionPolicy);
  const policyChanges = policy.filter((r) => original.find((o) => o.key === r.key)?.action !== r.action);
  const keeping = policyChanges.some((r) => r.action === 'keep');

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setSaved(false);
    void save.run(async () => {
      const body: SettingsBody = {};
      for (const k of scalarKeys) if (draft[k] !== initial[k]) body[k] = draft[k];
      if (policyChanges.length > 0 || resets.length > 0) {
        body.redactionPolicy = {
          ...Object.fromEntries(resets.map((k) => [k, null])),
          ...Object.fromEntries(policyChanges.map((r) => [r.key, r.action])),
        };
        if (keeping && confirmKeep) body.confirmKeepIdentifying = true;
      }
      if (Object.keys(body).length === 0) { setSaved(true); return; }
      const next = await api<SettingsBody>('PATCH', '/v1/settings', { body });
      setSaved(true);
      setResets([]);
      setConfirmKeep(false);
      onSaved(next);
    });
  };

  return (
    <form onSubmit={submit}>
      <section className="card" aria-labelledby="h-general">
        <h2 id="h-general">General</h2>
        <div className="fields">
          {scalarKeys.map((k) => {
            const v = draft[k];
            const id = `s-${k}`;
            return (
              <div key={k}>
                {typeof initial[k] === 'boolean' ? (
                  <label className="switch" htmlFor={id}>
                    <input id={id} type="checkbox" checked={Boolean(v)} onChange={(e) => setDraft({ ...draft, [k]: e.target.checked })} aria-describedby={`${id}-help`} />
                    {humanize(k)}
                  </label>
                ) : (
                  <>
                    <label htmlFor={id}>{humanize(k)}</label>
                    <input id={id} type={typeof initial[k] === 'number' ? 'number' : 'text'} min={typeof initial[k] === 'number' ? 0 : undefined}
                      value={v === null || v === undefined ? '' : String(v)} aria-describedby={`${id}-help`}
                      onChange={(e) => setDraft({ ...draft, [k]: typeof initial[k] === 'number' ? (e.target.value === '' ? '' : Number(e.target.value)) : e.target.value })} />
                  </>
                )}
                <span id={`${id}-help`} className="muted small">{HELP[k] ?? ''}</span>
              </div>
            );
          })}
          {readOnly.map((k) => <div key={k}><span className="muted small">{humanize(k)}</span><span>{formatValue(k, initial[k])}</span></div>)}
        </div>
      </section>
      <section className="card" aria-labelledby="h-policy">
        <h2 id="h-policy">Redaction policy</h2>
        <p className="muted small">What a deletion does to each personal field: nullify (set to null), mask (replace keeping the shape), delete (remove the stored file) or keep.</p>
        {policy.length === 0 ? <p className="empty">This server reports no redaction policy.</p> : (
          <div className="table-wrap">
            <table>
              <caption className="sr-only">Redaction policy</caption>
              <thead><tr><th scope="col">Record</th><th scope="col">Field</th><th scope="col">Action</th><th scope="col">Default?</th></tr></thead>
              <tbody>
                {policy.map((r, i) => {
                  const [record, ...rest] = r.key.split('.');
                  const field = rest.join('.') || r.key;
                  const options = r.allowed.includes(r.action) ? r.allowed : [r.action, ...r.allowed];
                  return (
                    <tr key={r.key}>
                      <td>{record}</td>
                      <td><code>{field}</code></td>
                      <td>
                        <select aria-label={`Action for ${r.key}`} value={r.action}
                          onChange={(e) => setPolicy(policy.map((p, j) => (j === i ? { ...p, action: e.target.value } : p)))}>
                          {options.map((a) => <option key={a} value={a}>{a}</option>)}
                        </select>
                      </td>
                      <td>
                        {r.key in overrides && !resets.includes(r.key) ? (
                          <button type="button" className="link" aria-label={`Restore the default action for ${r.key}`}
                            onClick={() => setResets([...resets, r.key])}>changed · restore default</button>
                        ) : resets.includes(r.key) ? <span className="muted">default on save</span> : <span className="muted">default</span>}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {keeping && (
        <p className="notice">
          <label className="switch">
            <input type="checkbox" checked={confirmKeep} onChange={(e) => setConfirmKeep(e.target.checked)} />
            I confirm keeping fields that may identify the person after deletion
          </label>
        </p>
      )}
      <div className="actions">
        <button type="submit" disabled={save.busy}>{save.busy ? 'Saving…' : 'Save settings'}</button>
        <button type="button" className="secondary" onClick={() => { setDraft(initial); setPolicy(policyRows(initial.redactionPolicy)); setResets([]); setSaved(false); }}>Discard changes</button>
      </div>
      {saved && <p className="success" role="status">Settings saved.</p>}
      <ErrorMessage error={save.error} what="Saving settings" />
    </form>
  );
}

export function Settings() {
  const [current, setCurrent] = useState<SettingsBody | null>(null);
  const settings = useLoad(() => api<SettingsBody>('GET', '/v1/settings'), []);
  return (
    <>
      <h1>Settings</h1>
      <Show state={settings} what="Settings">
        {(s) => <Editor initial={current ?? s} onSaved={setCurrent} />}
      </Show>
    </>
  );
}
