import { api, ApiError, download, type DeletionCase, type Page, type Receipt } from '../api.ts';
import { loadApplications, nameOf } from '../apps.ts';
import { Link } from '../router.tsx';
import { ErrorMessage, Fields, Show, humanize, useAction, useLoad } from '../ui.tsx';
import { CasesTable } from './CasesTable.tsx';

function groupByAction(policy: Record<string, unknown>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [field, action] of Object.entries(policy)) (out[String(action)] ??= []).push(field);
  for (const list of Object.values(out)) list.sort();
  return out;
}

export function ReceiptPage({ id }: { id: string }) {
  const receipt = useLoad(() => api<Receipt>('GET', `/v1/deletions/${id}`), [id]);
  const cases = useLoad(() => api<Page<DeletionCase>>('GET', '/v1/data-deletions', { query: { subscriptionId: id, limit: 500 } }), [id]);
  const apps = useLoad(loadApplications, []);
  const signed = useAction();
  const keys = useAction();
  const keyList = useLoad(() => api<{ keys: Array<{ keyId: string; publicKey: string; createdAt: string; retiredAt: string | null }> }>('GET', '/v1/receipt-keys'), []);
  // The workflow's last step: verify that the customer can no longer be fetched.
  const verify = useLoad(async () => {
    try {
      await api('GET', `/v1/customers/${id}`);
      return 'still-there' as const;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return 'gone' as const;
      throw e;
    }
  }, [id]);
  return (
    <>
      <p className="small no-print"><Link to="/deletions">← Deletion receipts</Link></p>
      <h1>Deletion receipt</h1>
      <div className="actions no-print">
        <button type="button" onClick={() => window.print()}>Print</button>
        <button type="button" className="secondary" disabled={signed.busy}
          onClick={() => void signed.run(() => download(`/v1/deletions/${id}/signed`, `deletion-receipt-${id}.signed.json`))}>Download signed receipt (JSON)</button>
        <button type="button" className="secondary" disabled={keys.busy}
          onClick={() => void keys.run(() => download('/v1/receipt-keys', 'lethe-receipt-keys.json'))}>Download public keys</button>
      </div>
      <ErrorMessage error={signed.error} what="The signed receipt" />
      <ErrorMessage error={keys.error} what="The public keys" />
      <Show state={receipt} what="The deletion receipt">
        {(r) => (
          <>
            <p className="success" role="status">Customer <code>{r.customerId}</code> was deleted at {new Date(r.deletedAt).toISOString().replace('T', ' ').slice(0, 19)} UTC.</p>
            {verify.data === 'gone' && <p className="success" role="status">Verified: <code>GET /v1/customers/{r.customerId}</code> now answers 404.</p>}
            {verify.data === 'still-there' && <p className="error" role="alert">The customer can still be fetched.</p>}
            <section className="card" aria-labelledby="h-receipt">
              <h2 id="h-receipt">Receipt</h2>
              <Fields label="Receipt" value={r as unknown as Record<string, unknown>} omit={['softDeleted', 'cancelled', 'applicationsNotified', 'redaction']} />
              <div className="grid2">
                <div>
                  <h3>Soft deleted</h3>
                  <ul>{Object.entries(r.softDeleted).map(([k, n]) => <li key={k}>{humanize(k)}: {n}</li>)}</ul>
                </div>
                <div>
                  <h3>Cancelled</h3>
                  <ul>{Object.entries(r.cancelled).map(([k, n]) => <li key={k}>{humanize(k)}: {n}</li>)}</ul>
                </div>
                {r.redaction && (
                  <div>
                    <h3>Redaction</h3>
                    <Fields label="Redaction" value={r.redaction} omit={['policy']} />
                    {r.redaction.policy && typeof r.redaction.policy === 'object' ? (
                      <ul aria-label="Redaction policy applied">
                        {Object.entries(groupByAction(r.redaction.policy as Record<string, unknown>)).map(([action, fields]) => (
                          <li key={action}><strong>{humanize(action)}</strong>: {fields.join(', ')}</li>
                        ))}
                      </ul>
                    ) : null}
                  </div>
                )}
              </div>
              <h3>Applications told</h3>
              {r.applicationsNotified.length === 0 ? <p>None.</p> : (
                <ul>{r.applicationsNotified.map((a) => <li key={a}><Link to={`/applications/${a}`}>{nameOf(apps.data, a)}</Link></li>)}</ul>
              )}
              <p className="no-print"><Link to={`/audit?subjectId=${r.customerId}`}>The audit event</Link></p>
            </section>
            <section className="card" aria-labelledby="h-verify">
              <h2 id="h-verify">How anyone can verify it</h2>
              <p>The signed receipt holds the receipt as canonical JSON (RFC 8785), an Ed25519 signature over those exact bytes, and the signing key's id.
                Anyone can check it with any Ed25519 library and the public key below, without trusting this server's database:
                {' '}<code>npx lethe receipt verify deletion-receipt-{r.customerId}.signed.json --keys lethe-receipt-keys.json</code>.</p>
              {keyList.data && (
                <ul className="small" aria-label="Receipt-signing public keys">
                  {keyList.data.keys.map((k) => <li key={k.keyId}><code>{k.keyId}</code>: <code>{k.publicKey}</code>{k.retiredAt ? ' (retired, still valid for older receipts)' : ' (current)'}</li>)}
                </ul>
              )}
            </section>
          </>
        )}
      </Show>
      <section className="card no-print" aria-labelledby="h-cases">
        <h2 id="h-cases">Deletion cases</h2>
        {cases.error ? <ErrorMessage error={cases.error} what="Deletion cases" /> : !cases.data ? <p className="loading" role="status">Loading cases…</p>
          : <CasesTable rows={cases.data.data} apps={apps.data} caption="Deletion cases of this customer" empty="No deletion case for this customer." />}
      </section>
    </>
  );
}
