import { useEffect, useState } from 'react';
import { api, getKey, type Customer, type Page } from '../api.ts';
import { loadApplications, nameOf } from '../apps.ts';
import { Link } from '../router.tsx';
import { ErrorMessage, Fields, Show, StatusBadge, Table, autoColumns, useAction, useLoad, type Column } from '../ui.tsx';
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

export function settleButtons(row: Row, reload: () => void, action: ReturnType<typeof useAction>) {
  if (row.status !== 'pending') return null;
  const settle = (status: 'succeeded' | 'failed') => action.run(async () => {
    await api('PATCH', `/v1/transactions/${row.id}`, { body: { status } });
    reload();
  });
  return (
    <span className="actions">
      <button type="button" className="secondary" disabled={action.busy} onClick={() => void settle('succeeded')}
        aria-label={`Mark transaction ${row.id} succeeded`}>Mark succeeded</button>
      <button type="button" className="secondary" disabled={action.busy} onClick={() => void settle('failed')}
        aria-label={`Mark transaction ${row.id} failed`}>Mark failed</button>
    </span>
  );
}

function Collection({ customerId, path, title, apps, onChange, version }: {
  customerId: string; path: string; title: string; apps: ReturnType<typeof useLoad<Awaited<ReturnType<typeof loadApplications>>>>;
  onChange: () => void; version: number;
}) {
  const rows = useLoad(() => loadAll(`/v1/customers/${customerId}/${path}`), [customerId, path, version]);
  const action = useAction();
  return (
    <section className="card" aria-labelledby={`h-${path}`}>
      <h2 id={`h-${path}`}>{title} {rows.data && <span className="muted small">({rows.data.length})</span>}</h2>
      <ErrorMessage error={action.error} />
      <Show state={rows} what={title}>
        {(data) => {
          const cols: Array<Column<Row>> = autoColumns(data, ['customerId', 'id', 'updatedAt', 'deletedAt']).map((c) => {
            if (c.key === 'status') return { ...c, render: (r: Row) => <StatusBadge value={String(r.status)} /> };
            if (c.key === 'applicationId') return { ...c, label: 'Application', render: (r: Row) => <Link to={`/applications/${String(r.applicationId)}`}>{nameOf(apps.data, String(r.applicationId))}</Link> };
            return c;
          });
          cols.unshift({ key: 'id', label: 'Id', render: (r) => <code>{r.id.slice(0, 8)}</code> });
          if (path === 'transactions') cols.push({ key: 'settle', label: 'Settle', render: (r) => settleButtons(r, () => { onChange(); }, action) });
          if (path === 'licenses' || path === 'subscriptions') {
            cols.push({
              key: 'cancel', label: 'Cancel', render: (r) => r.status === 'active' ? (
                <button type="button" className="secondary" disabled={action.busy}
                  aria-label={`Cancel ${path === 'licenses' ? 'license' : 'subscription'} ${r.id}`}
                  onClick={() => void action.run(async () => { await api('POST', `/v1/${path}/${r.id}/cancel`, { body: {} }); onChange(); })}>Cancel</button>
              ) : null,
            });
          }
          return <Table caption={title} rows={data} columns={cols} empty={`No ${title.toLowerCase()}.`} />;
        }}
      </Show>
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
  const hold = useAction();
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

  const toggleHold = () => hold.run(async () => {
    await api('PATCH', `/v1/customers/${id}`, { body: { legalHold: !c.legalHold } });
    refresh();
  });

  return (
    <>
      <p className="small"><Link to="/customers">← Customers</Link></p>
      <h1>{customerName(c)}</h1>
      <section className="card" aria-labelledby="h-profile">
        <h2 id="h-profile">Profile</h2>
        {c.profilePhotoUrl && <Photo id={id} version={version} />}
        <Fields label="Profile" value={c as unknown as Record<string, unknown>} omit={['legalHold']} />
        <div className="actions">
          <span className="switch" id="hold-label">Legal hold</span>
          <button type="button" role="switch" aria-checked={c.legalHold} aria-labelledby="hold-label" aria-describedby="hold-help"
            className={c.legalHold ? '' : 'secondary'} onClick={() => void toggleHold()} disabled={hold.busy}>
            {c.legalHold ? 'On' : 'Off'}
          </button>
          <span id="hold-help" className="muted small">While on, the customer cannot be deleted.</span>
        </div>
        <ErrorMessage error={hold.error} />
        <div className="actions">
          <button type="button" className="danger" onClick={() => setDeleting(true)}>Delete customer…</button>
          <a className="secondary" href="#h-activity">Activity</a>
        </div>
      </section>
      {COLLECTIONS.map((col) => (
        <Collection key={col.path} customerId={id} path={col.path} title={col.title} apps={apps} onChange={refresh} version={version} />
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
      <DeleteDialog open={deleting} customer={c} apps={apps.data} onClose={() => { setDeleting(false); refresh(); }} />
    </>
  );
}
