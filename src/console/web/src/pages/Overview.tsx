import { useMemo } from 'react';
import { api, countAll, type Application, type Page } from '../api.ts';
import { loadApplications, nameOf } from '../apps.ts';
import { ChartFigure, type Series } from '../charts.tsx';
import { formatDuration } from '../format.tsx';
import { Link } from '../router.tsx';
import { ErrorMessage, useLoad } from '../ui.tsx';

export const CASE_STATES = ['grace', 'required', 'confirmed', 'revoked'] as const;
const DAY_MS = 24 * 3600 * 1000;

interface Stats {
  from: string; to: string; zone: string;
  days: Array<{ day: string; deletions: number; casesRequired: number; confirmations: Record<string, number>; overdueAtEndOfDay: number }>;
  applications: Array<{ applicationId: string; confirmed: number; medianSecondsToConfirm: number | null; p95SecondsToConfirm: number | null }>;
}

function Tile({ label, to, value, capped, tone }: { label: string; to: string; value: number; capped?: boolean; tone?: 'bad' }) {
  return (
    <li className={`tile${tone === 'bad' && value > 0 ? ' tile-bad' : ''}`}>
      <Link to={to}>
        <span className="num">{value}{capped ? '+' : ''}</span>{' '}
        <span className="label">{label}</span>
      </Link>
    </li>
  );
}

function Group({ title, children }: { title: string; children: React.ReactNode }) {
  const id = `h-${title.replace(/\W+/g, '-').toLowerCase()}`;
  return <section aria-labelledby={id}><h2 id={id}>{title}</h2>{children}</section>;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

function Charts({ stats, apps }: { stats: Stats; apps: Application[] | null }) {
  const c = useMemo(() => {
    const labels = stats.days.map((d) => d.day.slice(5));
    const confirmed = stats.days.map((d) => sum(Object.values(d.confirmations)));
    const deletions: Series[] = [{ label: 'Deletions', data: stats.days.map((d) => d.deletions), color: '#1f5fbf' }];
    const flow: Series[] = [
      { label: 'Became required', data: stats.days.map((d) => d.casesRequired), color: '#b3261e' },
      { label: 'Confirmed', data: confirmed, color: '#1e7a3c' },
    ];
    const overdue: Series[] = [{ label: 'Overdue at day end', data: stats.days.map((d) => d.overdueAtEndOfDay), color: '#8a5a00' }];
    const timed = stats.applications.filter((a) => a.medianSecondsToConfirm !== null);
    const appLabels = timed.map((a) => nameOf(apps, a.applicationId));
    const hours = (s: number | null) => (s === null ? 0 : Math.round((s / 3600) * 10) / 10);
    const timing: Series[] = [
      { label: 'Median', data: timed.map((a) => hours(a.medianSecondsToConfirm)), color: '#1f5fbf' },
      { label: '95th percentile', data: timed.map((a) => hours(a.p95SecondsToConfirm)), color: '#7fb2ff' },
    ];
    const last = stats.days[stats.days.length - 1];
    const peak = stats.days.reduce((m, d) => (d.deletions > m.deletions ? d : m), stats.days[0]!);
    return {
      labels, deletions, flow, overdue, appLabels, timing, timed,
      s1: `${sum(deletions[0]!.data)} deletions from ${stats.from} to ${stats.to}${peak && peak.deletions > 0 ? `; most on ${peak.day} (${peak.deletions})` : ''}.`,
      s2: `${sum(flow[0]!.data)} cases became required and ${sum(confirmed)} were confirmed in the period.`,
      s3: `${last?.overdueAtEndOfDay ?? 0} cases overdue at the end of ${stats.to}; highest ${Math.max(0, ...overdue[0]!.data)}.`,
      s4: timed.length === 0 ? 'No confirmation in the period.'
        : timed.map((a) => `${nameOf(apps, a.applicationId)}: median ${formatDuration(a.medianSecondsToConfirm)}, 95th percentile ${formatDuration(a.p95SecondsToConfirm)}`).join('; ') + '.',
    };
  }, [stats, apps]);
  return (
    <div className="charts">
      <ChartFigure title="Deletions per day" summary={c.s1} labels={c.labels} series={c.deletions} />
      <ChartFigure title="Cases required vs confirmed" summary={c.s2} labels={c.labels} series={c.flow} />
      <ChartFigure title="Overdue cases" summary={c.s3} labels={c.labels} series={c.overdue} type="line" />
      <ChartFigure title="Time to confirm, per application" summary={c.s4} labels={c.appLabels} series={c.timing} horizontal unit="h" />
    </div>
  );
}

export function Overview() {
  const customers = useLoad(() => countAll('/v1/customers'), []);
  const stats = useLoad(() => api<Stats>('GET', '/v1/stats'), []);
  const apps = useLoad(loadApplications, []);
  const cases = useLoad(async () => {
    const out: Record<string, { count: number; capped: boolean }> = {};
    for (const s of CASE_STATES) out[s] = await countAll('/v1/data-deletions', { status: s });
    const overdue = await countAll('/v1/data-deletions', { status: 'required', overdue: 'true' });
    const failing = await countAll('/v1/delivery-health', { failing: 'true' });
    return { byState: out, overdue, failing };
  }, []);
  const endpoints = useLoad(async () => {
    let cursor: string | null = null;
    const list: Application[] = [];
    do {
      const page: Page<Application> = await api('GET', '/v1/applications', { query: { limit: 500, cursor } });
      list.push(...page.data);
      cursor = page.nextCursor;
    } while (cursor && list.length < 10_000);
    return { total: list.length, disabled: list.filter((a) => !a.enabled).length, failing: list.filter((a) => a.enabled && a.failingSince).length };
  }, []);
  // The last 7 local days of the server's statistics (its clock and zone), so tile and list agree.
  const weekFrom = stats.data?.days.slice(-7)[0]?.day ?? new Date(Date.now() - 7 * DAY_MS).toISOString().slice(0, 10);
  const lastWeek = stats.data ? sum(stats.data.days.slice(-7).map((d) => d.deletions)) : null;

  return (
    <>
      <h1>Overview</h1>
      <Group title="Needs attention">
        {cases.error ? <ErrorMessage error={cases.error} what="Deletion cases" /> : cases.data && endpoints.data ? (
          <ul className="tiles">
            <Tile label="Cases whose delivery is failing" to="/cases?delivery=failing" value={cases.data.failing.count} capped={cases.data.failing.capped} tone="bad" />
            <Tile label="Overdue cases" to="/cases?status=required&overdue=1" value={cases.data.overdue.count} capped={cases.data.overdue.capped} tone="bad" />
            <Tile label="Endpoints failing" to="/applications?show=failing" value={endpoints.data.failing} tone="bad" />
            <Tile label="Endpoints disabled" to="/applications?show=disabled" value={endpoints.data.disabled} tone="bad" />
          </ul>
        ) : <p className="loading" role="status">Counting…</p>}
      </Group>
      <Group title="Last 30 days">
        {stats.error ? <ErrorMessage error={stats.error} what="Statistics" /> : stats.data ? <Charts stats={stats.data} apps={apps.data} />
          : <p className="loading" role="status">Loading statistics…</p>}
      </Group>
      <Group title="Totals">
        <ul className="tiles">
          {customers.data ? <Tile label="Customers" to="/customers" value={customers.data.count} capped={customers.data.capped} />
            : <li className="tile loading">{customers.error ? 'Customers unavailable' : 'Counting customers…'}</li>}
          {lastWeek !== null ? <Tile label="Deletions in the last 7 days" to={`/deletions?from=${weekFrom}`} value={lastWeek} />
            : <li className="tile loading">Counting deletions…</li>}
          {cases.data && CASE_STATES.map((s) => <Tile key={s} label={`Cases in ${s}`} to={`/cases?status=${s}`} value={cases.data!.byState[s]!.count} capped={cases.data!.byState[s]!.capped} />)}
          {endpoints.data && <Tile label="Applications" to="/applications" value={endpoints.data.total} />}
        </ul>
      </Group>
    </>
  );
}
