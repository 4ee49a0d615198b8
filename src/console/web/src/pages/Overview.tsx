import { api, countAll, type Application, type Page } from '../api.ts';
import { Link } from '../router.tsx';
import { ErrorMessage, useLoad } from '../ui.tsx';

export const CASE_STATES = ['grace', 'required', 'confirmed', 'revoked'] as const;
const WEEK_MS = 7 * 24 * 3600 * 1000;

function Tile({ label, to, value, capped }: { label: string; to: string; value: number; capped?: boolean }) {
  return (
    <li className="tile">
      <Link to={to} aria-label={`${label}: ${value}${capped ? ' or more' : ''}. Open the list`}>
        <span className="num">{value}{capped ? '+' : ''}</span>
        <span className="label">{label}</span>
      </Link>
    </li>
  );
}

function Group({ title, children }: { title: string; children: React.ReactNode }) {
  return <section aria-labelledby={`h-${title}`}><h2 id={`h-${title}`}>{title}</h2>{children}</section>;
}

export function Overview() {
  const customers = useLoad(() => countAll('/v1/customers'), []);
  const deletions = useLoad(() => {
    const since = Date.now() - WEEK_MS;
    return countAll('/v1/audit-events', { type: 'customer.deleted' }, 50, (e) => new Date(String(e.createdAt)).getTime() >= since);
  }, []);
  const cases = useLoad(async () => {
    const out: Record<string, { count: number; capped: boolean }> = {};
    for (const s of CASE_STATES) out[s] = await countAll('/v1/data-deletions', { status: s });
    const overdue = await countAll('/v1/data-deletions', { status: 'required', overdue: 'true' });
    return { byState: out, overdue };
  }, []);
  const endpoints = useLoad(async () => {
    let cursor: string | null = null;
    const apps: Application[] = [];
    do {
      const page: Page<Application> = await api('GET', '/v1/applications', { query: { limit: 500, cursor } });
      apps.push(...page.data);
      cursor = page.nextCursor;
    } while (cursor && apps.length < 10_000);
    return {
      total: apps.length,
      disabled: apps.filter((a) => !a.enabled).length,
      failing: apps.filter((a) => a.enabled && a.failingSince).length,
    };
  }, []);

  return (
    <>
      <h1>Overview</h1>
      <Group title="Customers">
        {customers.error ? <ErrorMessage error={customers.error} what="The customer count" /> : (
          <ul className="tiles" aria-busy={customers.loading}>
            {customers.data ? <Tile label="Customers" to="/customers" value={customers.data.count} capped={customers.data.capped} />
              : <li className="tile loading">Counting customers…</li>}
            {deletions.error ? <li className="tile"><ErrorMessage error={deletions.error} what="The deletion count" /></li>
              : deletions.data ? <Tile label="Deletions in the last 7 days" to="/audit?type=customer.deleted" value={deletions.data.count} capped={deletions.data.capped} />
                : <li className="tile loading">Counting deletions…</li>}
          </ul>
        )}
      </Group>
      <Group title="Deletion cases">
        {cases.error ? <ErrorMessage error={cases.error} what="Deletion cases" /> : cases.data ? (
          <ul className="tiles">
            {CASE_STATES.map((s) => <Tile key={s} label={`Cases in ${s}`} to={`/cases?status=${s}`} value={cases.data!.byState[s]!.count} capped={cases.data!.byState[s]!.capped} />)}
            <Tile label="Overdue cases" to="/cases?status=required&overdue=1" value={cases.data.overdue.count} capped={cases.data.overdue.capped} />
          </ul>
        ) : <p className="loading" role="status">Counting cases…</p>}
      </Group>
      <Group title="Webhook endpoints">
        {endpoints.error ? <ErrorMessage error={endpoints.error} what="Applications" /> : endpoints.data ? (
          <ul className="tiles">
            <Tile label="Applications" to="/applications" value={endpoints.data.total} />
            <Tile label="Endpoints disabled" to="/applications?show=disabled" value={endpoints.data.disabled} />
            <Tile label="Endpoints failing" to="/applications?show=failing" value={endpoints.data.failing} />
          </ul>
        ) : <p className="loading" role="status">Loading applications…</p>}
      </Group>
    </>
  );
}
