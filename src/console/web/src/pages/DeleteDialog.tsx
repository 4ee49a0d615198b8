import { useState } from 'react';
import { api, ApiError, download, type Application, type Customer, type Preview } from '../api.ts';
import { nameOf } from '../apps.ts';
import { navigate } from '../router.tsx';
import { Dialog, ErrorMessage, Loading, formatTime, formatValue, humanize, useAction, useLoad } from '../ui.tsx';
import { useConfirm } from '../confirm.tsx';
import { formatMoney } from '../format.tsx';
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
  const confirm = useConfirm();
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

  const deletedTotal = Object.values(preview.softDeleted).reduce((a, b) => a + b, 0);
  const fieldName = (k: string) => humanize(k.replace('.', ' ')).replace(/\bip\b/gi, 'IP').replace(/\btin\b/gi, 'TIN');
  const blockerText = (b: { code: string; count?: number; detail: string }) => (b.code === 'legal_hold'
    ? 'A legal hold is on. Lift it on the customer page (with a reason) to allow the deletion.'
    : b.code === 'pending_transactions'
      ? `${b.count ?? 'Some'} transaction${b.count === 1 ? ' is' : 's are'} still pending. Settle ${b.count === 1 ? 'it' : 'them'} below first.`
      : b.detail.replace(/\s*\((GET|POST|PATCH|PUT|DELETE) \/v1[^)]*\)/g, ''));

  return (
    <div className="dialog-body">
      <p className="lead">
        {deletedTotal} record{deletedTotal === 1 ? '' : 's'} deleted, {preview.preservedTransactions} transaction{preview.preservedTransactions === 1 ? '' : 's'} kept without the customer's name,
        {' '}{preview.applicationsToNotify.length} application{preview.applicationsToNotify.length === 1 ? '' : 's'} told to delete their copy.
        {auto === false ? ' Personal fields are kept (automatic personal data deletion is off).' : ' Personal fields are redacted.'}
      </p>
      {preview.blockers.length === 0 ? <p className="success" role="status">Nothing blocks this deletion.</p> : (
        <div className="error" role="alert" aria-labelledby="h-blockers">
          <h3 id="h-blockers">Blocked</h3>
          <ul aria-label="Blockers">
            {preview.blockers.map((b) => <li key={b.code}>{blockerText(b)}</li>)}
          </ul>
          {pending.length > 0 && (
            <ul aria-label="Pending transactions">
              {pending.map((t) => (
                <li key={t.id}>
                  <strong>{formatMoney(t.amountMinor, t.currency)}</strong> pending since {formatTime(t.createdAt)} {settleButtons(t, () => setVersion((v) => v + 1), confirm.ask)}
                </li>
              ))}
            </ul>
          )}
          <button type="button" className="secondary" onClick={() => setVersion((v) => v + 1)}>Check again</button>
        </div>
      )}

      <form onSubmit={(e) => { e.preventDefault(); if (canDelete) void doDelete(); }} className="confirm-delete">
        <p className="small">Recommended first: <button type="button" className="link" disabled={exporting.busy}
          onClick={() => void exporting.run(() => download(`/v1/customers/${customer.id}/export`, `customer-${customer.id}.json`))}>
          {exporting.busy ? 'exporting…' : 'download everything held about the customer'}</button> (a JSON export).</p>
        <ErrorMessage error={exporting.error} what="The customer export" />
        <label htmlFor="confirm-delete">Type the customer's {what} <code>{expected}</code> to confirm</label>
        <div className="row">
          <input id="confirm-delete" value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" spellCheck={false}
            aria-describedby="confirm-help" disabled={!preview.deletable} className="grow" />
          <button type="submit" className="danger" disabled={!canDelete}>{del.busy ? 'Deleting…' : 'Delete permanently'}</button>
          <button type="button" className="secondary" onClick={onClose}>Cancel</button>
        </div>
        <p id="confirm-help" className="muted small">
          {!preview.deletable ? 'Resolve what blocks the deletion first.' : matches ? 'Ready: this cannot be undone.' : `The button stays disabled until the ${what} matches.`}
        </p>
      </form>
      <ErrorMessage error={del.error} />

      <h3>Details</h3>
      <details>
        <summary>Deleted ({deletedTotal})</summary>
        <ul>
          {Object.entries(preview.softDeleted).filter(([, n]) => n > 0).map(([k, n]) => <li key={k}>{n} × {humanize(k)}</li>)}
          {preview.cancelled.subscriptions > 0 && <li>{preview.cancelled.subscriptions} active subscription(s) cancelled</li>}
          {preview.cancelled.licenses > 0 && <li>{preview.cancelled.licenses} active license(s) cancelled</li>}
          {auto !== false && preview.activityEntries > 0 && <li>{preview.activityEntries} activity entr{preview.activityEntries === 1 ? 'y' : 'ies'} (one entry saying the customer was deleted remains, without identifying details)</li>}
          {auto !== false && preview.profilePhoto && <li>The profile photo file</li>}
        </ul>
      </details>
      <details>
        <summary>Redacted{redaction?.policyVersion ? ` (policy version ${redaction.policyVersion})` : ''}</summary>
        {auto === false ? <p>Automatic personal data deletion is <strong>off</strong>: records are soft deleted, personal fields are kept.</p>
          : groups ? (
            <ul>
              {Object.entries(groups).filter(([a]) => a !== 'keep').map(([action, fields]) => (
                <li key={action}><strong>{humanize(action)}</strong>: {fields.map(fieldName).join(', ')}</li>
              ))}
              {groups.keep && <li><strong>Kept</strong> (your policy keeps them): {groups.keep.map(fieldName).join(', ')}</li>}
            </ul>
          ) : <><p>Personal fields are nullified or masked per the redaction policy.</p><ErrorMessage error={state.data.settingsError} what="The redaction policy" /></>}
      </details>
      <details>
        <summary>Preserved</summary>
        <ul>
          <li>{preview.preservedTransactions} transaction record(s), unlinked from the customer (a pseudonymous reference)</li>
          <li>An audit event and a deletion receipt (ids and counts only)</li>
          {backup?.sealedArchive ? <li>A sealed backup of the customer's records, purged after {backup.retentionDays ?? '?'} days</li>
            : settings && typeof settings.backupRetentionDays === 'number' && <li>A sealed backup, purged after {settings.backupRetentionDays} days</li>}
        </ul>
        {extras.length > 0 && (
          <dl className="fields">{extras.map(([k, v]) => <div key={k}><dt>{humanize(k)}</dt><dd>{formatValue(k, v)}</dd></div>)}</dl>
        )}
      </details>
      <details>
        <summary>Applications to be told ({preview.applicationsToNotify.length})</summary>
        {preview.applicationsToNotify.length === 0 ? <p>None: the customer never held a license.</p> : (
          <ul aria-label="Applications to be told">
            {preview.applicationsToNotify.map((a) => {
              const plan = casePlans.find((p) => p.applicationId === a);
              return (
                <li key={a}>{nameOf(apps, a)}
                  {plan ? <span className="small"> — deletion case: {plan.status ?? 'none'}{plan.becomes && plan.becomes !== plan.status ? ` → ${plan.becomes}` : ''}</span> : null}
                </li>
              );
            })}
          </ul>
        )}
      </details>
      {confirm.dialog}
    </div>
  );
}

export function DeleteDialog({ open, customer, apps, onClose }: { open: boolean; customer: Customer; apps: Application[] | null; onClose: () => void }) {
  return (
    <Dialog open={open} onClose={onClose} title={`Delete ${customer.email ?? 'this customer'}?`}>
      <Body customer={customer} apps={apps} onClose={onClose} />
    </Dialog>
  );
}
