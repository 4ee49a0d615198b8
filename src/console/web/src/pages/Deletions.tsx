import { useState, type FormEvent } from 'react';
import { api, type Page, type Receipt } from '../api.ts';
import { ShortId } from '../format.tsx';
import { Link, navigate } from '../router.tsx';
import { ErrorMessage, Loading, Pager, Table, useCursorPages, useLoad } from '../ui.tsx';

const day = (iso: string) => (iso ? iso.slice(0, 10) : '');

/** Deletion receipts, newest first, by date range (the range is in the URL: dates only, no personal data). */
export function Deletions({ query }: { query: URLSearchParams }) {
  const from = query.get('from') ?? '';
  const to = query.get('to') ?? '';
  const [fromInput, setFrom] = useState(day(from));
  const [toInput, setTo] = useState(day(to));
  const pages = useCursorPages();
  // A bare day (YYYY-MM-DD) in the URL means its start, UTC.
  const asTime = (v: string) => (/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00.000Z` : v);
  const list = useLoad(() => api<Page<Receipt>>('GET', '/v1/deletions', { query: { from: asTime(from), to: asTime(to), limit: 50, cursor: pages.cursor } }), [from, to, pages.cursor]);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (fromInput) q.set('from', new Date(`${fromInput}T00:00:00Z`).toISOString());
    if (toInput) q.set('to', new Date(Date.parse(`${toInput}T00:00:00Z`) + 86_400_000).toISOString());
    pages.reset();
    navigate(`/deletions${q.size ? `?${q}` : ''}`);
  };
  return (
    <>
      <h1>Deletion receipts</h1>
      <p className="muted">Evidence of every customer deletion: ids, counts and times only. Each receipt can be printed or downloaded signed (Ed25519), for an auditor or the data subject.</p>
      <form className="card row" onSubmit={submit} aria-label="Filter receipts by date">
        <div><label htmlFor="d-from">From (UTC day)</label><input id="d-from" type="date" value={fromInput} onChange={(e) => setFrom(e.target.value)} /></div>
        <div><label htmlFor="d-to">To (UTC day, inclusive)</label><input id="d-to" type="date" value={toInput} onChange={(e) => setTo(e.target.value)} /></div>
        <button type="submit">Show</button>
        {(from || to) && <button type="button" className="secondary" onClick={() => { setFrom(''); setTo(''); pages.reset(); navigate('/deletions'); }}>All receipts</button>}
      </form>
      <section aria-busy={list.loading} aria-live="polite">
        {list.error ? <ErrorMessage error={list.error} what="Deletion receipts" /> : !list.data ? <Loading what="Loading receipts" /> : (
          <>
            <Table<Receipt & Record<string, unknown>> caption="Deletion receipts, newest first" rows={list.data.data as Array<Receipt & Record<string, unknown>>}
              className="cards-on-phone" empty="No deletion in this range."
              columns={[
                { key: 'deletedAt', label: 'Deleted' },
                { key: 'customerId', label: 'Customer', render: (r) => <Link to={`/deletions/${r.customerId}`}>Receipt for <ShortId id={r.customerId} /></Link> },
                { key: 'records', label: 'Records deleted', render: (r) => String(Object.values(r.softDeleted).reduce((a, b) => a + b, 0)) },
                { key: 'preservedTransactions', label: 'Transactions kept' },
                { key: 'applicationsNotified', label: 'Applications told', render: (r) => String(r.applicationsNotified.length) },
                { key: 'redacted', label: 'Redacted', render: (r) => (r.redaction && (r.redaction as { ran?: boolean }).ran ? 'yes' : 'no') },
              ]} />
            <Pager label="Receipt pages" hasPrev={pages.hasPrev} hasNext={!!list.data.nextCursor} onPrev={pages.prev} onNext={() => pages.next(list.data!.nextCursor)} />
          </>
        )}
      </section>
    </>
  );
}
