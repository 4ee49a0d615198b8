import { useState } from 'react';
import { api, ApiError, download, type Application, type Customer, type Preview } from '../api.ts';
import { nameOf } from '../apps.ts';
import { navigate } from '../router.tsx';
import { Dialog, ErrorMessage, Loading, formatValue, humanize, useAction, useLoad } from '../ui.tsx';
import { settleButtons } from './Customer.tsx';

type Row = Record<string, unknown> & { id: string };

interface DialogData {
  preview: Preview;
  settings: Record<string, unknown> | null;
  settingsError: unknown;
  pending: Row[];
}

async function loadDialog(id: string): Promise<DialogData> {
  const preview = await api<Preview>('GET', `/v1/customers/${id}/deletion-preview`);
  let settings: Record<string, unknown> | null = null;
  let settingsError: unknown = null;
  try { settings = await api('GET', '/v1/settings'); } catch (e) { settingsError = e; }
  let pending: Row[] = [];
  if (preview.blockers.some((b) => b.code === 'pending_transactions')) {
    const page = await api<{ data: Row[] }>('GET', `/v1/customers/${id}/transactions`, { query: { limit: 500 } });
    pending = page.data.filter((t) => t.status === 'pending');
  }
  return { preview, settings, settingsError, pending };
}

// Preview fields rendered in their own sections; any other field (a domain's step) is listed as it comes.
const KNOWN = new Set(['customerId', 'deletable', 'blockers', 'softDeleted', 'cancelled', 'preservedTransactions',
  'activityEntries', 'profilePhoto', 'applicationsToNotify', 'backup', 'redaction', 'deletionCases']);

type CasePlan = { applicationId: string; status: string | null; becomes?: string | null };

function policyGroups(settings: Record<string, unknown> | null): Record<string, string[]> | null {
  const policy = settings?.redactionPolicy;
  if (!policy || typeof policy !== 'object') return null;
  const groups: Record<string, string[]> = {};
  const entries: Array<[string, string]> = Array.isArray(policy)
    ? policy.map((p: Record<string, unknown>) => [String(p.key ?? p.field), String(p.action)])
    : Object.entries(policy as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'object' && v ? String((v as Record<string, unknown>).action) : String(v)]);
  for (const [field, action] of entries) (groups[action] ??= []).push(field);
  return groups;
}

function Body({ customer, apps, onClose }: { customer: Customer; apps: Application[] | null; onClose: () => void }) {
  const [version, setVersion] = useState(0);
  const state = useLoad(() => loadDialog(customer.id), [customer.id, version]);
  const [typed, setTyped] = useState('');
  const settle = useAction();
  const del = useAction();
  const exporting = useAction();
  const expected = customer.email ?? customer.id;
  const what = customer.email ? 'e-mail address' : 'customer id';

  if (state.error) return <div className="dialog-body"><ErrorMessage error={state.error} what="The deletion preview" /></div>;
  if (!state.data) return <div className="dialog-body"><Loading what="Loading the deletion preview" /></div>;
  const { preview, settings, pending } = state.data;
  const redaction = (preview.redaction ?? null) as { automatic?: boolean; policyVersion?: number } | null;
  const backup = (preview.backup ?? null) as { sealedArchive?: boolean; retentionDays?: number } | null;
  const casePlans = ((preview.deletionCases as { cases?: CasePlan[] } | undefined)?.cases ?? []);
  const auto = typeof redaction?.automatic === 'boolean' ? redaction.automatic
    : settings ? settings.automaticPersonalDataDeletion !== false : null;
  const groups = policyGroups(settings);
  const matches = typed.trim().toLowerCase() === expected.toLowerCase();
  const canDelete = preview.deletable && matches && !del.busy;
  const extras = Object.entries(preview).filter(([k]) => !KNOWN.has(k));

  const doDelete = () => del.run(async () => {
    try {
      await api('DELETE', `/v1/customers/${customer.id}`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) setVersion((v) => v + 1);
      throw e;
    }
    navigate(`/deletions/${customer.id}`);
  });

  return (
    <div className="dialog-body">
      <section aria-labelledby="h-blockers">
        <h3 id="h-blockers">Blockers</h3>
        {preview.blockers.length === 0 ? <p className="success" role="status">Nothing blocks this deletion.</p> : (
          <div className="error" role="alert">
            <ul aria-label="Blockers">
              {preview.blockers.map((b) => (
                <li key={b.code}><strong>{humanize(b.code)}</strong>{b.count !== undefined ? ` (${b.count})` : ''}: {b.detail}</li>
              ))}
            </ul>
          </div>
        )}
        {pending.length > 0 && (
          <div className="card">
            <p>Pending transactions must be settled first:</p>
            <ul>
              {pending.map((t) => (
                <li key={t.id}>
                  <code>{t.id.slice(0, 8)}</code> {String(t.amountMinor)} {String(t.currency)} {settleButtons(t, () => setVersion((v) => v + 1), settle)}
                </li>
              ))}
            </ul>
            <ErrorMessage error={settle.error} />
          </div>
        )}
        {preview.blockers.some((b) => b.code === 'legal_hold') && <p>Turn the legal hold off on the customer page to allow the deletion.</p>}
        <button type="button" className="secondary" onClick={() => setVersion((v) => v + 1)}>Check again</button>
      </section>

      <section aria-labelledby="h-deleted">
        <h3 id="h-deleted">Deleted</h3>
        <ul>
          {Object.entries(preview.softDeleted).filter(([, n]) => n > 0).map(([k, n]) => <li key={k}>{n} × {humanize(k)}</li>)}
          {preview.cancelled.subscriptions > 0 && <li>{preview.cancelled.subscriptions} active subscription(s) cancelled</li>}
          {preview.cancelled.licenses > 0 && <li>{preview.cancelled.licenses} active license(s) cancelled</li>}
          {auto !== false && preview.activityEntries > 0 && <li>{preview.activityEntries} activity entr{preview.activityEntries === 1 ? 'y' : 'ies'} (one masked <code>customer.deleted</code> entry remains)</li>}
          {auto !== false && preview.profilePhoto && <li>The profile photo file</li>}
        </ul>
      </section>

      <section aria-labelledby="h-redacted">
        <h3 id="h-redacted">Redacted{redaction?.policyVersion ? <span className="muted small"> (policy version {redaction.policyVersion})</span> : null}</h3>
        {auto === false ? <p>Automatic personal data deletion is <strong>off</strong>: records are soft deleted, personal fields are kept.</p>
          : groups ? (
            <ul>
              {Object.entries(groups).filter(([a]) => a !== 'keep').map(([action, fields]) => (
                <li key={action}><strong>{humanize(action)}</strong>: {fields.join(', ')}</li>
              ))}
              {groups.keep && <li><strong>Kept</strong> (policy says keep): {groups.keep.join(', ')}</li>}
            </ul>
          ) : <><p>Personal fields are nullified or masked per the redaction policy.</p><ErrorMessage error={state.data.settingsError} what="The redaction policy" /></>}
      </section>

      <section aria-labelledby="h-preserved">
        <h3 id="h-preserved">Preserved</h3>
        <ul>
          <li>{preview.preservedTransactions} transaction record(s), unlinked from the customer (pseudonymous reference)</li>
          <li>An audit event and a deletion receipt (ids and counts only)</li>
          {backup?.sealedArchive ? <li>A sealed pre-deletion backup of the customer's records, purged after {backup.retentionDays ?? '?'} days</li>
            : settings && typeof settings.backupRetentionDays === 'number' && <li>A sealed pre-deletion backup, purged after {settings.backupRetentionDays} days</li>}
        </ul>
        {extras.length > 0 && (
          <dl className="fields">{extras.map(([k, v]) => <div key={k}><dt>{humanize(k)}</dt><dd>{formatValue(k, v)}</dd></div>)}</dl>
        )}
      </section>

      <section aria-labelledby="h-apps">
        <h3 id="h-apps">Applications to be told</h3>
        {preview.applicationsToNotify.length === 0 ? <p>None: the customer never held a license.</p> : (
          <ul aria-label="Applications to be told">
            {preview.applicationsToNotify.map((a) => {
              const plan = casePlans.find((p) => p.applicationId === a);
              return (
                <li key={a}>{nameOf(apps, a)} <span className="muted small">({a})</span>
                  {plan ? <span className="small"> — deletion case: {plan.status ?? 'none'}{plan.becomes && plan.becomes !== plan.status ? ` → ${plan.becomes}` : ''}</span> : null}
                </li>
              );
            })}
          </ul>
        )}
      </section>

      <section aria-labelledby="h-backup">
        <h3 id="h-backup">Back up first</h3>
        <p>Download everything held about the customer (the data-subject export) before deleting.</p>
        <button type="button" className="secondary" disabled={exporting.busy}
          onClick={() => void exporting.run(() => download(`/v1/customers/${customer.id}/export`, `customer-${customer.id}.json`))}>
          {exporting.busy ? 'Exporting…' : 'Download export (JSON)'}
        </button>
        <ErrorMessage error={exporting.error} what="The customer export" />
      </section>

      <form onSubmit={(e) => { e.preventDefault(); if (canDelete) void doDelete(); }}>
        <label htmlFor="confirm-delete">Type the customer's {what} <code>{expected}</code> to confirm</label>
        <div className="row">
          <input id="confirm-delete" value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" spellCheck={false}
            size={40} aria-describedby="confirm-help" disabled={!preview.deletable} />
          <button type="submit" className="danger" disabled={!canDelete}>{del.busy ? 'Deleting…' : 'Delete permanently'}</button>
          <button type="button" className="secondary" onClick={onClose}>Cancel</button>
        </div>
        <p id="confirm-help" className="muted small">
          {!preview.deletable ? 'Resolve the blockers above first.' : matches ? 'Ready: this cannot be undone.' : `The button stays disabled until the ${what} matches.`}
        </p>
      </form>
      <ErrorMessage error={del.error} />
    </div>
  );
}

export function DeleteDialog({ open, customer, apps, onClose }: { open: boolean; customer: Customer; apps: Application[] | null; onClose: () => void }) {
  return (
    <Dialog open={open} onClose={onClose} title={`Delete ${customer.email ?? customer.id}`}>
      <Body customer={customer} apps={apps} onClose={onClose} />
    </Dialog>
  );
}
