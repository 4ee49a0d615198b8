import { useEffect, useState } from 'react';
import { api, getKey, type Application, type Customer, type DeletionCase, type Page } from '../api.ts';
import { LEGAL_HOLD_OFF_REASONS, LEGAL_HOLD_ON_REASONS, LICENSE_CANCEL_REASONS, useConfirm, type ConfirmRequest } from '../confirm.tsx';
import { ShortId, formatMoney } from '../format.tsx';
import { CasesTable } from './CasesTable.tsx';
import { loadApplications, nameOf } from '../apps.ts';
import { Link } from '../router.tsx';
import { ErrorMessage, Fields, Show, StatusBadge, Table, autoColumns, useLoad, type Column } from '../ui.tsx';
import { customerName } from './Customers.tsx';
import { DeleteDialog } from './DeleteDialog.tsx';

export const COLLECTIONS = [
  { path: 'addresses', title: 'Addresses' },
  { path: 'payment-methods', title: 'Payment methods' },
  { path: 'subscriptions', title: 'Subscriptions' },
  { path: 'memberships', title: 'Memberships' },
  { path: 'social-identities', title: 'Social identities' },
  { path: 'invoices', title: 'Invoices' },
  { path: 'orders', title: 'Orders' },
  { path: 'transactions', title: 'Transactions' },
  { path: 'licenses', title: 'Licenses' },
] as const;

type Row = Record<string, unknown> & { id: string };
export type ConfirmAsk = (r: ConfirmRequest) => void;

async function loadAll(path: string): Promise<Row[]> {
  const out: Row[] = [];
  let cursor: string | null = null;
  do {
    const page: Page<Row> = await api('GET', path, { query: { limit: 500, cursor } });
    out.push(...page.data);
    cursor = page.nextCursor;
  } while (cursor && out.length < 5000);
  return out;
}

const REMOVABLE: Record<string, string> = { addresses: 'address', 'payment-methods': 'card', memberships: 'membership', 'social-identities': 'social identity' };

function describe(path: string, r: Row): string {
  if (path === 'payment-methods') return `${String(r.brand ?? 'card')} ending ${String(r.last4 ?? '????')}`;
  if (path === 'addresses') return [r.line1, r.city, r.country].filter(Boolean).join(', ') || 'this address';
  return String(r.name ?? r.provider ?? REMOVABLE[path] ?? 'this record');
}

/** Settle buttons of a pending transaction: both ask first (settling is money moving). */
export function settleButtons(row: Row, reload: () => void, ask: ConfirmAsk) {
  if (row.status !== 'pending') return null;
  const amount = formatMoney(row.amountMinor, row.currency);
  const settle = (status: 'succeeded' | 'failed') => ask({
    title: status === 'succeeded' ? `Mark the ${amount} payment succeeded?` : `Mark the ${amount} payment failed?`,
    body: <p>{status === 'succeeded' ? 'Record that the money arrived.' : 'Record that the payment did not go through.'} The transaction is no longer pending, so it stops blocking a deletion. This cannot be set back to pending.</p>,
    confirmLabel: status === 'succeeded' ? 'Mark succeeded' : 'Mark failed',
    run: async () => { await api('PATCH', `/v1/transactions/${row.id}`, { body: { status } }); reload(); },
  });
  return (
    <span className="actions">
      <button type="button" className="secondary" onClick={() => settle('succeeded')}>Mark succeeded</button>
      <button type="button" className="secondary" onClick={() => settle('failed')}>Mark failed</button>
    </span>
  );
}

function Collection({ customerId, path, title, apps, onChange, version, ask }: {
  customerId: string; path: string; title: string; apps: ReturnType<typeof useLoad<Awaited<ReturnType<typeof loadApplications>>>>;
  onChange: () => void; version: number; ask: ConfirmAsk;
}) {
  const rows = useLoad(() => loadAll(`/v1/customers/${customerId}/${path}`), [customerId, path, version]);
  return (
    <section className="card" aria-labelledby={`h-${path}`}>
      <h2 id={`h-${path}`}>{title} {rows.data && <span className="muted small">({rows.data.length})</span>}</h2>
      <Show state={rows} what={title}>
        {(data) => {
          const money = data.some((r) => 'amountMinor' in r);
          let cols: Array<Column<Row>> = autoColumns(data, ['customerId', 'id', 'updatedAt', 'deletedAt', ...(money ? ['amountMinor', 'currency'] : [])]).map((c) => {
            if (c.key === 'status') return { ...c, render: (r: Row) => <StatusBadge value={String(r.status)} /> };
            if (c.key === 'applicationId') return { ...c, label: 'Application', render: (r: Row) => <Link to={`/applications/${String(r.applicationId)}`}>{nameOf(apps.data, String(r.applicationId))}</Link> };
            return c;
          });
          if (money) cols = [{ key: 'amount', label: 'Amount', render: (r) => formatMoney(r.amountMinor, r.currency) }, ...cols];
          cols.unshift({ key: 'id', label: 'Id', render: (r) => <ShortId id={r.id} /> });
          if (path === 'transactions') cols.push({ key: 'settle', label: 'Settle', render: (r) => settleButtons(r, onChange, ask) });
          if (path === 'licenses') {
            cols.push({
              key: 'cancel', label: 'Action', render: (r) => r.status === 'active' ? (
                <button type="button" className="secondary" onClick={() => ask({
                  title: `Cancel the license for ${nameOf(apps.data, String(r.applicationId))}?`,
                  body: <p>If the customer holds no other active license for this application, its grace period starts now; when it ends without a new license, the application is told to delete the customer's data.</p>,
                  confirmLabel: 'Cancel license', danger: true, reasons: LICENSE_CANCEL_REASONS, note: true,
                  run: async ({ reason, note }) => { await api('POST', `/v1/licenses/${r.id}/cancellation`, { body: { reason, ...(note ? { note } : {}) } }); onChange(); },
                })}>Cancel license…</button>
              ) : null,
            });
          }
          if (path === 'subscriptions') {
            cols.push({
              key: 'cancel', label: 'Action', render: (r) => r.status === 'active' ? (
                <button type="button" className="secondary" onClick={() => ask({
                  title: `Cancel the ${String(r.plan)} subscription?`, body: <p>The subscription ends now. This cannot be undone.</p>,
                  confirmLabel: 'Cancel subscription', danger: true,
                  run: async () => { await api('POST', `/v1/subscriptions/${r.id}/cancel`, { body: {} }); onChange(); },
                })}>Cancel subscription…</button>
              ) : null,
            });
          }
          if (REMOVABLE[path]) {
            cols.push({
              key: 'remove', label: 'Action', render: (r) => (
                <button type="button" className="secondary" onClick={() => ask({
                  title: `Remove ${describe(path, r)}?`,
                  body: <p>The {REMOVABLE[path]} is removed and its personal fields are redacted now, whatever the automatic-deletion setting. A restore will not bring it back. This cannot be undone.</p>,
                  confirmLabel: `Remove ${REMOVABLE[path]}`, danger: true,
                  run: async () => { await api('DELETE', `/v1/customers/${customerId}/${path}/${r.id}`); onChange(); },
                })}>Remove…</button>
              ),
            });
          }
          return <Table caption={title} rows={data} columns={cols} empty={`No ${title.toLowerCase()}.`} className="cards-on-phone" />;
        }}
      </Show>
    </section>
  );
}

function CustomerCases({ id, apps }: { id: string; apps: Application[] | null }) {
  const cases = useLoad(() => api<Page<DeletionCase>>('GET', '/v1/data-deletions', { query: { subscriptionId: id, limit: 500 } }), [id]);
  return (
    <section className="card" aria-labelledby="h-cases">
      <h2 id="h-cases">Deletion cases {cases.data && <span className="muted small">({cases.data.data.length})</span>}</h2>
      {cases.error ? <ErrorMessage error={cases.error} what="Deletion cases" /> : !cases.data ? <p className="loading" role="status">Loading cases…</p>
        : <CasesTable rows={cases.data.data} apps={apps} caption="Deletion cases of this customer" empty="No deletion case: no license of this customer has ended." />}
    </section>
  );
}

/** The profile photo, fetched with the key (an <img src> cannot send it) and shown from a blob URL. */
function Photo({ id, version }: { id: string; version: number }) {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    let href: string | null = null;
    let live = true;
    const key = getKey();
    fetch(`/v1/customers/${id}/profile-photo`, { headers: key ? { authorization: `Bearer ${key}` } : {}, cache: 'no-store' })
      .then(async (res) => {
        if (!res.ok || !live) return;
        href = URL.createObjectURL(await res.blob());
        setUrl(href);
      })
      .catch(() => undefined);
    return () => { live = false; if (href) URL.revokeObjectURL(href); };
  }, [id, version]);
  return url ? <img src={url} alt="Profile photo" className="photo" /> : null;
}

export function CustomerPage({ id }: { id: string }) {
  const [version, setVersion] = useState(0);
  const customer = useLoad(() => api<Customer>('GET', `/v1/customers/${id}`), [id, version]);
  const activity = useLoad(() => loadAll(`/v1/customers/${id}/activity`), [id, version]);
  const apps = useLoad(loadApplications, []);
  const confirm = useConfirm();
  const [deleting, setDeleting] = useState(false);
  const refresh = () => setVersion((v) => v + 1);

  if (customer.error) {
    const gone = (customer.error as { status?: number }).status === 404;
    return (
      <>
        <h1>Customer</h1>
        <ErrorMessage error={customer.error} what="The customer page" />
        {gone && <p>If this customer was deleted, the <Link to={`/deletions/${id}`}>deletion receipt</Link> shows what happened.</p>}
        <p><Link to="/customers">Back to customers</Link></p>
      </>
    );
  }
  const c = customer.data;
  if (!c) return <><h1>Customer</h1><p className="loading" role="status">Loading customer…</p></>;

  const toggleHold = () => confirm.ask(c.legalHold ? {
    title: 'Lift the legal hold?', body: <p>Without the hold, the customer can be deleted, by an operator or (if enabled) automatically when their last license's grace period ends.</p>,
    confirmLabel: 'Lift legal hold', reasons: LEGAL_HOLD_OFF_REASONS, note: true,
    run: async ({ reason, note }) => { await api('PUT', `/v1/customers/${id}/legal-hold`, { body: { legalHold: false, reason, ...(note ? { note } : {}) } }); refresh(); },
  } : {
    title: 'Place a legal hold?', body: <p>While the hold is on, nobody can delete this customer, and automatic deletion skips them.</p>,
    confirmLabel: 'Place legal hold', reasons: LEGAL_HOLD_ON_REASONS, note: true,
    run: async ({ reason, note }) => { await api('PUT', `/v1/customers/${id}/legal-hold`, { body: { legalHold: true, reason, ...(note ? { note } : {}) } }); refresh(); },
  });

  return (
    <>
      <p className="small"><Link to="/customers">← Customers</Link></p>
      <h1>{customerName(c)}</h1>
      <CustomerCases id={id} apps={apps.data} />
      <section className="card" aria-labelledby="h-profile">
        <h2 id="h-profile">Profile</h2>
        {c.profilePhotoUrl && <Photo id={id} version={version} />}
        <Fields label="Profile" value={c as unknown as Record<string, unknown>} omit={['legalHold']} />
        <div className="actions">
          <span>Legal hold: <strong>{c.legalHold ? 'on' : 'off'}</strong></span>
          <button type="button" className="secondary" onClick={toggleHold} aria-describedby="hold-help">{c.legalHold ? 'Lift legal hold…' : 'Place legal hold…'}</button>
          <span id="hold-help" className="muted small">While on, the customer cannot be deleted.</span>
        </div>
        <div className="actions">
          <button type="button" className="danger" onClick={() => setDeleting(true)}>Delete customer…</button>
          <a className="secondary" href="#h-activity">Activity</a>
        </div>
      </section>
      {COLLECTIONS.map((col) => (
        <Collection key={col.path} customerId={id} path={col.path} title={col.title} apps={apps} onChange={refresh} version={version} ask={confirm.ask} />
      ))}
      <section className="card" aria-labelledby="h-activity">
        <h2 id="h-activity">Activity</h2>
        <Show state={activity} what="Activity">
          {(rows) => <Table caption="Activity" rows={rows} empty="No activity recorded."
            columns={[{ key: 'createdAt', label: 'When' }, { key: 'type', label: 'Event' },
              { key: 'recordId', label: 'Record', render: (r) => r.recordId ? <code>{String(r.recordId).slice(0, 8)}</code> : '—' },
              { key: 'details', label: 'Details' }]} />}
        </Show>
      </section>
      {confirm.dialog}
      <DeleteDialog open={deleting} customer={c} apps={apps.data} onClose={() => { setDeleting(false); refresh(); }} />
    </>
  );
}
