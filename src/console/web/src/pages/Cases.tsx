import { useState, type FormEvent } from 'react';
import { api, type DeletionCase, type Page } from '../api.ts';
import { loadApplications } from '../apps.ts';
import { navigate } from '../router.tsx';
import { ErrorMessage, Loading, Pager, useCursorPages, useLoad } from '../ui.tsx';
import { CasesTable } from './CasesTable.tsx';
import type { CaseDeliveryHealth } from '../delivery.tsx';
import { CASE_STATES } from './Overview.tsx';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function Cases({ query }: { query: URLSearchParams }) {
  const status = query.get('status') ?? '';
  const applicationId = query.get('applicationId') ?? '';
  const subscriptionId = query.get('subscriptionId') ?? '';
  const overdue = query.get('overdue') === '1';
  const failing = query.get('delivery') === 'failing';
  const [customerInput, setCustomerInput] = useState(subscriptionId);
  const pages = useCursorPages();
  const apps = useLoad(loadApplications, []);
  const cases = useLoad(async () => {
    if (failing) {
      // Cases whose latest webhook is failing (GET /v1/delivery-health), shown as cases.
      const page = await api<Page<CaseDeliveryHealth>>('GET', '/v1/delivery-health', {
        query: { failing: 'true', applicationId, limit: 50, cursor: pages.cursor },
      });
      const rows: DeletionCase[] = page.data
        .filter((h) => (!subscriptionId || h.subscriptionId === subscriptionId) && (!status || h.caseStatus === status))
        .map((h) => ({ id: h.caseId, subscriptionId: h.subscriptionId, applicationId: h.applicationId, status: h.caseStatus }));
      return { data: rows, nextCursor: page.nextCursor };
    }
    return api<Page<DeletionCase>>('GET', '/v1/data-deletions', {
      query: { status, applicationId, subscriptionId, overdue: overdue ? 'true' : undefined, limit: 50, cursor: pages.cursor },
    });
  }, [status, applicationId, subscriptionId, overdue, failing, pages.cursor]);

  const setFilter = (patch: Record<string, string>) => {
    const next = new URLSearchParams({ status, applicationId, subscriptionId, ...(overdue ? { overdue: '1' } : {}), ...(failing ? { delivery: 'failing' } : {}), ...patch });
    for (const [k, v] of [...next.entries()]) if (!v) next.delete(k);
    pages.reset();
    const s = next.toString();
    navigate(`/cases${s ? `?${s}` : ''}`);
  };
  const [inputError, setInputError] = useState('');
  const submitCustomer = (e: FormEvent) => {
    e.preventDefault();
    const v = customerInput.trim();
    // Only an id goes into the URL: anything else (an e-mail, a name) is refused here.
    if (v && !UUID.test(v)) { setInputError('Enter a customer id (UUID). To find a customer by e-mail, use Customers.'); return; }
    setInputError('');
    setFilter({ subscriptionId: v.toLowerCase() });
  };

  return (
    <>
      <h1>Deletion cases{overdue ? ': overdue' : ''}{failing ? ': delivery failing' : ''}</h1>
      <form className="card row" onSubmit={submitCustomer} aria-label="Filter deletion cases">
        <div>
          <label htmlFor="f-status">State</label>
          <select id="f-status" value={status} onChange={(e) => setFilter({ status: e.target.value, overdue: '' })}>
            <option value="">Any</option>
            {CASE_STATES.map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </div>
        <div>
          <label htmlFor="f-app">Application</label>
          <select id="f-app" value={applicationId} onChange={(e) => setFilter({ applicationId: e.target.value })}>
            <option value="">Any</option>
            {apps.data?.map((a) => <option key={a.id} value={a.id}>{a.name}</option>)}
          </select>
        </div>
        <div>
          <label htmlFor="f-customer">Customer id</label>
          <input id="f-customer" value={customerInput} onChange={(e) => setCustomerInput(e.target.value)} size={38}
            placeholder="customer id (UUID)" spellCheck={false} autoComplete="off"
            aria-invalid={inputError ? true : undefined} aria-describedby={inputError ? 'f-customer-error' : undefined} />
        </div>
        <div>
          <label className="switch" htmlFor="f-failing">
            <input id="f-failing" type="checkbox" checked={failing} onChange={(e) => setFilter({ delivery: e.target.checked ? 'failing' : '', overdue: '' })} />
            Delivery failing
          </label>
        </div>
        <button type="submit">Filter</button>
        {(status || applicationId || subscriptionId || overdue || failing) && (
          <button type="button" className="secondary" onClick={() => { setCustomerInput(''); pages.reset(); navigate('/cases'); }}>Clear filters</button>
        )}
      </form>
      {inputError && <p id="f-customer-error" className="error" role="alert">{inputError}</p>}
      <section aria-live="polite" aria-busy={cases.loading}>
        {cases.error ? <ErrorMessage error={cases.error} what="Deletion cases" /> : !cases.data ? <Loading what="Loading cases" /> : (
          <>
            <CasesTable rows={cases.data.data} apps={apps.data} caption="Deletion cases" empty="No deletion case matches these filters." />
            <Pager label="Case pages" hasPrev={pages.hasPrev} hasNext={!!cases.data.nextCursor} onPrev={pages.prev}
              onNext={() => pages.next(cases.data!.nextCursor)} />
          </>
        )}
      </section>
    </>
  );
}
