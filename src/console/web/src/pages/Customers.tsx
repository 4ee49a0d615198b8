import { useState, type FormEvent } from 'react';
import { api, type Customer, type Page } from '../api.ts';
import { Link } from '../router.tsx';
import { ErrorMessage, Loading, Pager, Table, useCursorPages, useLoad } from '../ui.tsx';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// The last search lives in memory only (never in the URL: an e-mail is personal data), so
// "back" from a customer page shows the same results.
let lastSearch = '';

export function customerName(c: Pick<Customer, 'displayName' | 'firstName' | 'lastName'>): string {
  return c.displayName || [c.firstName, c.lastName].filter(Boolean).join(' ') || '(no name)';
}

async function search(term: string, cursor: string | null): Promise<Page<Customer>> {
  if (UUID.test(term)) {
    try {
      return { data: [await api<Customer>('GET', `/v1/customers/${term.toLowerCase()}`)], nextCursor: null };
    } catch (e) {
      if ((e as { status?: number }).status === 404) return { data: [], nextCursor: null };
      throw e;
    }
  }
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
          <input id="customer-search" type="search" size={40} value={input} onChange={(e) => setInput(e.target.value)}
            placeholder="ada@example.com or 3f2c…" autoComplete="off" spellCheck={false} />
        </div>
        <button type="submit">Search</button>
        {term && <button type="button" className="secondary" onClick={() => { setInput(''); lastSearch = ''; setTerm(''); pages.reset(); }}>Show all</button>}
      </form>
      <p className="muted small">An e-mail search matches the whole address (case-insensitive). Deleted customers never appear.</p>
      <section aria-live="polite" aria-busy={result.loading}>
        <h2>{term ? 'Search results' : 'All customers'}</h2>
        {result.error ? <ErrorMessage error={result.error} what="The customer list" />
          : !result.data ? <Loading what="Searching" /> : (
            <>
              <Table<Customer & Record<string, unknown>> caption="Customers" rows={result.data.data as Array<Customer & Record<string, unknown>>}
                empty={term ? 'No living customer matches this search.' : 'No customers yet.'}
                columns={[
                  { key: 'name', label: 'Name', render: (c) => <Link to={`/customers/${c.id}`}>{customerName(c)}</Link> },
                  { key: 'email', label: 'E-mail' },
                  { key: 'id', label: 'Id', render: (c) => <code>{c.id}</code> },
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
