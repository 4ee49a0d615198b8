import { useState, type FormEvent } from 'react';
import { api, type AuditEvent, type Page } from '../api.ts';
import { navigate, useLocation } from '../router.tsx';
import { ErrorMessage, Loading, Pager, Table, useCursorPages, useLoad } from '../ui.tsx';

export function AuditLog() {
  const { query } = useLocation();
  const type = query.get('type') ?? '';
  const subjectId = query.get('subjectId') ?? '';
  const [typeInput, setTypeInput] = useState(type);
  const pages = useCursorPages();
  const verify = useLoad(() => api<{ valid: boolean; count: number; firstInvalidSeq?: number | null }>('GET', '/v1/audit-events/verify'), []);
  const events = useLoad(() => api<Page<AuditEvent>>('GET', '/v1/audit-events', {
    query: { type, subjectId, limit: 50, cursor: pages.cursor },
  }), [type, subjectId, pages.cursor]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    pages.reset();
    const q = new URLSearchParams();
    if (typeInput.trim()) q.set('type', typeInput.trim());
    navigate(`/audit${q.size ? `?${q}` : ''}`);
  };

  return (
    <>
      <h1>Audit log</h1>
      <section className="card" aria-labelledby="h-verify" aria-live="polite">
        <h2 id="h-verify">Chain verification</h2>
        {verify.error ? <ErrorMessage error={verify.error} what="Chain verification" /> : !verify.data ? <Loading what="Verifying the hash chain" />
          : verify.data.valid
            ? <p className="success" role="status">The hash chain is intact: {verify.data.count} event(s) verified.</p>
            : <p className="error" role="alert">The hash chain is broken{verify.data.firstInvalidSeq ? ` at event #${verify.data.firstInvalidSeq}` : ''} ({verify.data.count} event(s) checked).</p>}
        <button type="button" className="secondary" onClick={verify.reload}>Verify again</button>
      </section>
      <form className="card row" onSubmit={submit} aria-label="Filter the audit log">
        <div>
          <label htmlFor="audit-type">Event type</label>
          <input id="audit-type" value={typeInput} onChange={(e) => setTypeInput(e.target.value)} placeholder="customer.deleted" />
        </div>
        <button type="submit">Filter</button>
        {(type || subjectId) && <button type="button" className="secondary" onClick={() => { setTypeInput(''); pages.reset(); navigate('/audit'); }}>Clear filters</button>}
        {subjectId && <span className="muted">Subject <code>{subjectId}</code></span>}
      </form>
      <section aria-busy={events.loading}>
        {events.error ? <ErrorMessage error={events.error} what="The audit log" /> : !events.data ? <Loading what="Loading events" /> : (
          <>
            <p className="muted small">Page {pages.page}, oldest first.</p>
            <Table<AuditEvent & Record<string, unknown>> caption="Audit events" rows={events.data.data as Array<AuditEvent & Record<string, unknown>>}
              empty="No audit events match."
              columns={[
                { key: 'seq', label: '#' },
                { key: 'createdAt', label: 'When' },
                { key: 'type', label: 'Event' },
                { key: 'actorKeyId', label: 'Actor key', render: (e) => e.actorKeyId ? <code>{e.actorKeyId.slice(0, 8)}</code> : '—' },
                { key: 'subject', label: 'Subject', render: (e) => e.subjectId ? <span>{e.subjectType} <code>{e.subjectId.slice(0, 8)}</code></span> : '—' },
                { key: 'data', label: 'Data' },
                { key: 'hash', label: 'Hash', render: (e) => <code title={e.hash}>{e.hash.slice(0, 12)}…</code> },
              ]} />
            <Pager label="Audit pages" hasPrev={pages.hasPrev} hasNext={!!events.data.nextCursor} onPrev={pages.prev}
              onNext={() => pages.next(events.data!.nextCursor)} />
          </>
        )}
      </section>
    </>
  );
}
