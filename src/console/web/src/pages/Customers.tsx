import { useState, type FormEvent } from 'react';
import { api, type Customer, type Page } from '../api.ts';
import { Link } from '../router.tsx';
import { ShortId } from '../format.tsx';
import { ErrorMessage, Loading, Pager, Table, useCursorPages, useLoad } from '../ui.tsx';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// The last search lives in memory only (never in the URL: an e-mail is personal data), so
// "back" from a customer page shows the same results.
let lastSearch = '';

export function customerName(c: Pick<Customer, 'displayName' | 'firstName' | 'lastName'>): string {
  return c.displayName || [c.firstName, c.lastName].filter(Boolean).join(' ') || '(no name)';
}

interface Result extends Page<Customer> { deletedAt?: string; unsearchable?: boolean }

async function search(term: string, cursor: string | null): Promise<Result> {
  if (UUID.test(term)) {
    const id = term.toLowerCase();
    try {
      return { data: [await api<Customer>('GET', `/v1/customers/${id}`)], nextCursor: null };
    } catch (e) {
      if ((e as { status?: number }).status !== 404) throw e;
    }
    // Not a living customer: perhaps a deleted one, whose receipt tells what happened.
    try {
      const r = await api<{ deletedAt: string }>('GET', `/v1/deletions/${id}`);
      return { data: [], nextCursor: null, deletedAt: r.deletedAt };
    } catch { return { data: [], nextCursor: null }; }
  }
  if (term && !term.includes('@')) return { data: [], nextCursor: null, unsearchable: true };
  return api('GET', '/v1/customers', { query: { email: term || undefined, limit: 50, cursor } });
}

export function Customers() {
  const [input, setInput] = useState(lastSearch);
  const [term, setTerm] = useState(lastSearch);
  const pages = useCursorPages();
  const result = useLoad(() => search(term, pages.cursor), [term, pages.cursor]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    lastSearch = input.trim();
    setTerm(lastSearch);
    pages.reset();
  };

  return (
    <>
      <h1>Customers</h1>
      <form className="card row" role="search" onSubmit={submit} aria-label="Find a customer">
        <div>
          <label htmlFor="customer-search">E-mail address or customer id</label>
          <input id="customer-search" type="search" aria-describedby="search-help" value={input} onChange={(e) => setInput(e.target.value)}
            placeholder="ada@example.com or 3f2c…" autoComplete="off" spellCheck={false} />
        </div>
        <button type="submit">Search</button>
        {term && <button type="button" className="secondary" onClick={() => { setInput(''); lastSearch = ''; setTerm(''); pages.reset(); }}>Show all</button>}
      </form>
      <p className="muted small" id="search-help">Searches a <strong>whole e-mail address</strong> (case-insensitive) or a <strong>customer id</strong>. Names are not searchable. A deleted customer's id leads to their deletion receipt.</p>
      <section aria-live="polite" aria-busy={result.loading}>
        <h2>{term ? 'Search results' : 'All customers'}</h2>
        {result.error ? <ErrorMessage error={result.error} what="The customer list" />
          : !result.data ? <Loading what="Searching" /> : (
            <>
              {result.data.deletedAt && (
                <p className="notice" role="status">This customer was deleted on {new Date(result.data.deletedAt).toISOString().slice(0, 10)}. <Link to={`/deletions/${term.toLowerCase()}`}>Open the deletion receipt</Link>.</p>
              )}
              {result.data.unsearchable && (
                <p className="notice" role="status">"{term}" is neither an e-mail address nor a customer id. Search by the whole e-mail address or the id; names cannot be searched.</p>
              )}
              <Table<Customer & Record<string, unknown>> className="cards-on-phone" caption="Customers" rows={result.data.data as Array<Customer & Record<string, unknown>>}
                empty={term ? (result.data.deletedAt || result.data.unsearchable ? 'No living customer.' : 'No living customer has this e-mail address or id.') : 'No customers yet.'}
                columns={[
                  { key: 'name', label: 'Name', render: (c) => <Link to={`/customers/${c.id}`}>{customerName(c)}</Link> },
                  { key: 'email', label: 'E-mail' },
                  { key: 'id', label: 'Id', render: (c) => <ShortId id={c.id} /> },
                  { key: 'legalHold', label: 'Legal hold' },
                  { key: 'createdAt', label: 'Created' },
                ]} />
              <Pager label="Customer pages" hasPrev={pages.hasPrev} hasNext={!!result.data.nextCursor}
                onPrev={pages.prev} onNext={() => pages.next(result.data!.nextCursor)} />
            </>
          )}
      </section>
    </>
  );
}
