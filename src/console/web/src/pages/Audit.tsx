import { api, type AuditEvent, type Page } from '../api.ts';
import { ShortId } from '../format.tsx';
import { Link, navigate, useLocation } from '../router.tsx';
import { ErrorMessage, Loading, Table, formatValue, useLoad } from '../ui.tsx';

/** The audit log, newest first; type, subject and page live in the URL (ids and event names only). */
export function AuditLog() {
  const { query } = useLocation();
  const type = query.get('type') ?? '';
  const subjectId = query.get('subjectId') ?? '';
  const cursor = query.get('cursor') ?? '';
  const page = Number(query.get('page') ?? '1') || 1;
  const verify = useLoad(() => api<{ valid: boolean; count: number; firstInvalidSeq?: number | null }>('GET', '/v1/audit-events/verify'), []);
  const types = useLoad(() => api<{ types: Array<{ type: string; count: number }> }>('GET', '/v1/audit-events/types'), []);
  const events = useLoad(() => api<Page<AuditEvent>>('GET', '/v1/audit-events', {
    query: { type, subjectId, limit: 50, cursor, order: 'desc' },
  }), [type, subjectId, cursor]);

  const go = (patch: Record<string, string>) => {
    const q = new URLSearchParams({ type, subjectId, ...patch });
    for (const [k, v] of [...q.entries()]) if (!v) q.delete(k);
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
      <form className="card row" onSubmit={(e) => e.preventDefault()} aria-label="Filter the audit log">
        <div>
          <label htmlFor="audit-type">Event type</label>
          <select id="audit-type" value={type} onChange={(e) => go({ type: e.target.value, cursor: '', page: '' })}>
            <option value="">All types</option>
            {type && !types.data?.types.some((t) => t.type === type) && <option value={type}>{type}</option>}
            {types.data?.types.map((t) => <option key={t.type} value={t.type}>{t.type} ({t.count})</option>)}
          </select>
        </div>
        {(type || subjectId) && <button type="button" className="secondary" onClick={() => navigate('/audit')}>Clear filters</button>}
        {subjectId && <span className="muted">Subject <code>{subjectId}</code></span>}
      </form>
      <section aria-busy={events.loading}>
        {events.error ? <ErrorMessage error={events.error} what="The audit log" /> : !events.data ? <Loading what="Loading events" /> : (
          <>
            <p className="muted small">Newest first · page {page}.</p>
            <Table<AuditEvent & Record<string, unknown>> caption="Audit events, newest first" rows={events.data.data as Array<AuditEvent & Record<string, unknown>>}
              empty="No audit events match." className="cards-on-phone audit-table"
              columns={[
                { key: 'seq', label: '#' },
                { key: 'createdAt', label: 'When' },
                { key: 'type', label: 'Event', render: (e) => <Link to={`/audit?type=${encodeURIComponent(e.type)}`}>{e.type}</Link> },
                { key: 'actorKeyId', label: 'Actor key', render: (e) => (e.actorKeyId ? <ShortId id={e.actorKeyId} /> : 'system') },
                { key: 'subject', label: 'Subject', render: (e) => (e.subjectId ? <span>{e.subjectType} <Link to={`/audit?subjectId=${e.subjectId}`}><ShortId id={e.subjectId} /></Link></span> : '—') },
                { key: 'data', label: 'Data', render: (e) => <span className="wrap">{formatValue('data', e.data)}</span> },
                { key: 'hash', label: 'Hash', render: (e) => <code className="wrap" title={e.hash}>{e.hash.slice(0, 16)}…</code> },
              ]} />
            <nav className="pager" aria-label="Audit pages">
              <button type="button" disabled={page <= 1} onClick={() => window.history.back()}>← Newer</button>
              <button type="button" disabled={!events.data.nextCursor} onClick={() => go({ cursor: events.data!.nextCursor ?? '', page: String(page + 1) })}>Older →</button>
            </nav>
          </>
        )}
      </section>
    </>
  );
}
