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

/** Fields that identify the person on their own: keeping them after deletion needs an explicit confirmation. */
const IDENTIFYING = new Set(['customer.firstName', 'customer.lastName', 'customer.displayName', 'customer.email', 'customer.externalId',
  'address.firstName', 'address.lastName', 'address.line1', 'address.phone', 'payment_method.cardId', 'payment_method.token',
  'subscription.giftRecipientEmail', 'subscription.giftRecipientFirstName', 'subscription.giftRecipientLastName', 'social_identity.externalId']);

/** What a change to a general setting does, said before saving. */
function consequence(key: string, before: unknown, after: unknown): string | null {
  if (before === after) return null;
  if (key === 'automaticPersonalDataDeletion') {
    return after === false
      ? 'Turning this off: customers deleted from now on keep their personal fields (names, e-mail, addresses, card tokens), their files and their activity log. Only soft deletion happens until you turn it back on; the redaction backlog then redacts them.'
      : 'Turning this on: customers deleted while it was off are redacted by the next retention run, and every later deletion redacts at once.';
  }
  if (key === 'gracePeriodDays') {
    return `Applies to grace periods that start from now on; cases already in grace keep their end date. ${Number(after) === 0 ? 'With 0, a cancelled license makes the deletion required at the next grace-period run.' : `Applications will be told ${String(after)} days after a customer's last license ends.`}`;
  }
  if (key === 'notificationTime' || key === 'notificationTimeZone') return 'Changes when the daily deletion-required notices are sent, starting with the next run.';
  if (key === 'overdueAfterDays') return 'Changes which required cases count as overdue (tiles, filters, metrics) at once.';
  if (key === 'backupRetentionDays') return 'Sealed pre-deletion backups are purged after this many days; existing ones keep the expiry they were sealed with.';
  return null;
}

/** A save error in words an operator can act on. */
function saveErrorText(error: unknown, keeping: string[]): string | null {
  const detail = (error as { detail?: string })?.detail ?? '';
  if (/confirmKeepIdentifying/.test(detail)) {
    return `Keeping ${keeping.join(', ') || 'an identifying field'} needs your confirmation: tick "I confirm keeping fields that identify the person" below the table and save again.`;
  }
  return null;
}

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

  const changedScalars = scalarKeys.filter((k) => draft[k] !== initial[k]);
  const dirty = changedScalars.length > 0 || policyChanges.length > 0 || resets.length > 0;
  const keepingIdentifying = policyChanges.filter((r) => r.action === 'keep' && IDENTIFYING.has(r.key)).map((r) => r.key);
  useUnsavedGuard(dirty);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setSaved(false);
    void save.run(async () => {
      const body: SettingsBody = {};
      for (const k of changedScalars) body[k] = draft[k];
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
  const discard = () => { setDraft(initial); setPolicy(policyRows(initial.redactionPolicy)); setResets([]); setSaved(false); save.clear(); };
  const friendly = save.error ? saveErrorText(save.error, keepingIdentifying) : null;

  return (
    <form onSubmit={submit}>
      <div className="savebar" role="region" aria-label="Save settings">
        <span aria-live="polite">{dirty ? <strong>Unsaved changes ({changedScalars.length + policyChanges.length + resets.length})</strong>
          : saved ? <span className="ok-text">Settings saved.</span> : <span className="muted">No changes.</span>}</span>
        <button type="submit" disabled={save.busy || !dirty || (keepingIdentifying.length > 0 && !confirmKeep)}>{save.busy ? 'Saving…' : 'Save settings'}</button>
        <button type="button" className="secondary" onClick={discard} disabled={!dirty}>Discard changes</button>
      </div>
      {friendly ? <p className="error" role="alert">{friendly}</p> : <ErrorMessage error={save.error} what="Saving settings" />}
      <section className="card" aria-labelledby="h-general">
        <h2 id="h-general">General</h2>
        <div className="fields settings-fields">
          {scalarKeys.map((k) => {
            const v = draft[k];
            const id = `s-${k}`;
            const effect = consequence(k, initial[k], v);
            return (
              <div key={k}>
                {typeof initial[k] === 'boolean' ? (
                  <label className="switch" htmlFor={id}>
                    <input id={id} type="checkbox" checked={Boolean(v)} onChange={(e) => setDraft({ ...draft, [k]: e.target.checked })} aria-describedby={`${id}-help${effect ? ` ${id}-effect` : ''}`} />
                    {humanize(k)}
                  </label>
                ) : (
                  <>
                    <label htmlFor={id}>{humanize(k)}</label>
                    <input id={id} type={typeof initial[k] === 'number' ? 'number' : 'text'} min={typeof initial[k] === 'number' ? 0 : undefined}
                      value={v === null || v === undefined ? '' : String(v)} aria-describedby={`${id}-help${effect ? ` ${id}-effect` : ''}`}
                      onChange={(e) => setDraft({ ...draft, [k]: typeof initial[k] === 'number' ? (e.target.value === '' ? '' : Number(e.target.value)) : e.target.value })} />
                  </>
                )}
                <span id={`${id}-help`} className="muted small">{HELP[k] ?? ''}</span>
                {effect && <span id={`${id}-effect`} className="notice small consequence">{effect}</span>}
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
            <table className="cards-on-phone">
              <caption className="sr-only">Redaction policy</caption>
              <thead><tr><th scope="col">Record</th><th scope="col">Field</th><th scope="col">Action</th><th scope="col">Default?</th></tr></thead>
              <tbody>
                {policy.map((r, i) => {
                  const [record, ...rest] = r.key.split('.');
                  const field = rest.join('.') || r.key;
                  const options = r.allowed.includes(r.action) ? r.allowed : [r.action, ...r.allowed];
                  const warn = r.action === 'keep' && IDENTIFYING.has(r.key) && original.find((o) => o.key === r.key)?.action !== 'keep';
                  return (
                    <tr key={r.key} className={warn ? 'row-warn' : undefined}>
                      <td data-label="Record">{record}</td>
                      <td data-label="Field"><code>{field}</code></td>
                      <td data-label="Action">
                        <select aria-label={`Action for ${r.key}`} value={r.action} aria-describedby={warn ? `warn-${i}` : undefined}
                          onChange={(e) => setPolicy(policy.map((p, j) => (j === i ? { ...p, action: e.target.value } : p)))}>
                          {options.map((a) => <option key={a} value={a}>{a}</option>)}
                        </select>
                        {warn && <span id={`warn-${i}`} className="warn-text small"> ⚠ Identifies the person: after deletion anyone reading the data can still tell who it was.</span>}
                      </td>
                      <td data-label="Default?">
                        {r.key in overrides && !resets.includes(r.key) ? (
                          <button type="button" className="link" onClick={() => setResets([...resets, r.key])}>Restore default</button>
                        ) : resets.includes(r.key) ? <span className="muted">default on save</span> : <span className="muted">default</span>}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
        {keeping && (
          <p className="notice">
            <label className="switch">
              <input type="checkbox" checked={confirmKeep} onChange={(e) => setConfirmKeep(e.target.checked)} />
              I confirm keeping fields that identify the person after deletion{keepingIdentifying.length ? ` (${keepingIdentifying.join(', ')})` : ''}
            </label>
          </p>
        )}
      </section>
    </form>
  );
}

/** Warns before leaving with unsaved changes: a reload or closing the tab, and console links. */
function useUnsavedGuard(dirty: boolean) {
  useEffect(() => {
    if (!dirty) return;
    const beforeUnload = (e: BeforeUnloadEvent) => { e.preventDefault(); e.returnValue = ''; };
    const onClick = (e: MouseEvent) => {
      const a = (e.target as Element | null)?.closest?.('a[href]');
      if (!a || a.getAttribute('target') || e.defaultPrevented) return;
      if (!window.confirm('You have unsaved changes in Settings. Leave without saving?')) { e.preventDefault(); e.stopImmediatePropagation(); }
    };
    window.addEventListener('beforeunload', beforeUnload);
    document.addEventListener('click', onClick, true);
    return () => { window.removeEventListener('beforeunload', beforeUnload); document.removeEventListener('click', onClick, true); };
  }, [dirty]);
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
