import { api, ApiError, type DeletionCase, type Page } from '../api.ts';
import { loadApplications, nameOf } from '../apps.ts';
import { Link } from '../router.tsx';
import { ErrorMessage, Fields, Show, StatusBadge, Table, formatTime, useLoad } from '../ui.tsx';

type Row = Record<string, unknown>;

async function loadCase(id: string): Promise<DeletionCase> {
  try {
    return await api<DeletionCase>('GET', `/v1/data-deletions/${id}`);
  } catch (e) {
    if (!(e instanceof ApiError && e.missingRoute)) throw e;
  }
  // Servers without GET /v1/data-deletions/{id}: find it in the list.
  let cursor: string | null = null;
  for (let i = 0; i < 50; i++) {
    const page: Page<DeletionCase> = await api('GET', '/v1/data-deletions', { query: { limit: 500, cursor } });
    const hit = page.data.find((c) => c.id === id);
    if (hit) return hit;
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  throw new ApiError(404, 'Not found', 'No deletion case with this id', 'not_found', null);
}

/** Deliveries of this case: embedded in the case, or from the application's delivery log. */
async function loadDeliveries(c: DeletionCase): Promise<Row[]> {
  for (const k of ['deliveries', 'notifications', 'attempts']) if (Array.isArray(c[k])) return c[k] as Row[];
  const out: Row[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 20; i++) {
    const page: Page<Row> = await api('GET', `/v1/applications/${c.applicationId}/deliveries`, { query: { limit: 500, cursor, caseId: undefined } });
    out.push(...page.data.filter((d) => d.caseId === c.id || (d.subscriptionId ?? (d.data as Row | undefined)?.subscriptionId) === c.subscriptionId));
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  return out;
}

interface Step { at: string | null | undefined; label: string; future?: boolean; detail?: string }

function timeline(c: DeletionCase, deliveries: Row[] | null): Step[] {
  const steps: Step[] = [];
  const opened = (c.openedAt ?? c.createdAt) as string | undefined;
  if (opened) steps.push({ at: opened, label: 'Case opened' });
  if (c.graceEndsAt) steps.push({ at: c.graceEndsAt, label: 'Grace period ends', future: new Date(c.graceEndsAt).getTime() > Date.now() });
  if (c.revokedAt) steps.push({ at: c.revokedAt as string, label: 'Revoked: a new license arrived' });
  if (c.requiredSince) steps.push({ at: c.requiredSince, label: `Deletion required${c.reason ? ` (${c.reason})` : ''}` });
  for (const d of deliveries ?? []) {
    const at = (d.attemptedAt ?? d.createdAt ?? d.sentAt) as string | undefined;
    const status = d.statusCode ?? d.lastStatusCode;
    steps.push({
      at, label: `Notification ${d.outcome ?? d.status ?? 'attempt'}${d.attempt ? ` (attempt ${String(d.attempt)})` : ''}`,
      detail: [status ? `HTTP ${String(status)}` : '', d.error ? String(d.error) : ''].filter(Boolean).join(' · '),
    });
  }
  if (c.confirmedAt) steps.push({ at: c.confirmedAt, label: 'Confirmed by the application', detail: c.confirmedByKeyId ? `key ${c.confirmedByKeyId}` : '' });
  return steps.sort((a, b) => String(a.at ?? '').localeCompare(String(b.at ?? '')));
}

export function CasePage({ id }: { id: string }) {
  const kase = useLoad(() => loadCase(id), [id]);
  const deliveries = useLoad(async () => (kase.data ? loadDeliveries(kase.data) : null), [kase.data]);
  const apps = useLoad(loadApplications, []);
  return (
    <>
      <p className="small"><Link to="/cases">← Deletion cases</Link></p>
      <h1>Deletion case</h1>
      <Show state={kase} what="The deletion case">
        {(c) => (
          <>
            <section className="card" aria-labelledby="h-case">
              <h2 id="h-case"><StatusBadge value={c.status} /> {nameOf(apps.data, c.applicationId)}</h2>
              <Fields label="Case" value={c} omit={['deliveries', 'notifications', 'attempts']} />
              <p>
                <Link to={`/cases?subscriptionId=${c.subscriptionId}`}>Other cases of this customer</Link>
                {' · '}<Link to={`/applications/${c.applicationId}`}>The application</Link>
              </p>
            </section>
            <section className="card" aria-labelledby="h-timeline">
              <h2 id="h-timeline">Timeline</h2>
              <ol className="timeline" aria-label="Case timeline">
                {timeline(c, deliveries.data).map((s, i) => (
                  <li key={i} className={s.future ? 'future' : undefined}>
                    <strong>{s.label}</strong>{' '}
                    <span className="muted">{s.at ? formatTime(s.at) : ''}{s.future ? ' (upcoming)' : ''}</span>
                    {s.detail && <div className="small">{s.detail}</div>}
                  </li>
                ))}
              </ol>
              {deliveries.error ? <ErrorMessage error={deliveries.error} what="The delivery log" /> : null}
              {deliveries.loading && <p className="loading" role="status">Loading deliveries…</p>}
              {deliveries.data && deliveries.data.length > 0 && (
                <>
                  <h3>Delivery attempts</h3>
                  <Table caption="Delivery attempts" rows={deliveries.data} columns={Object.keys(deliveries.data[0]!).map((k) => ({ key: k, label: k }))} />
                </>
              )}
            </section>
          </>
        )}
      </Show>
    </>
  );
}
