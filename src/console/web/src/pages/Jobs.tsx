import { useState } from 'react';
import { api, type Page } from '../api.ts';
import { useConfirm } from '../confirm.tsx';
import { ShortId } from '../format.tsx';
import { ErrorMessage, Loading, Pager, StatusBadge, Table, formatTime, useCursorPages, useLoad } from '../ui.tsx';

const JOBS: Record<string, { title: string; what: string }> = {
  'grace-periods': { title: 'Grace periods', what: 'Makes deletion cases whose grace period ended required (and, if enabled, deletes customers who hold no license any more).' },
  'deletion-notifications': { title: 'Deletion notifications', what: "Sends today's data_deletion.required notices to applications (never twice in one day)." },
  retention: { title: 'Retention', what: 'Purges expired backups and operational rows, runs the redaction backlog.' },
  'database-backup': { title: 'Database backup', what: 'The scheduled database backup (Settings: scheduled backups); it runs only on its schedule.' },
};

export interface JobRun {
  id: string; job: string; trigger: 'manual' | 'scheduled'; actorKeyId: string | null; instanceId: string;
  startedAt: string; finishedAt: string | null; durationMs: number | null;
  outcome: 'running' | 'succeeded' | 'failed' | 'abandoned'; result: Record<string, unknown> | null; error: string | null;
}
interface JobInfo { name: string; runnable: boolean; lastRun: JobRun | null }

const titleOf = (job: string) => JOBS[job]?.title ?? job;

/** "1.2 s", "340 ms", "2 min 5 s"; running runs have none. */
function duration(ms: number | null): string {
  if (ms === null) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/**
 * A run's counts in one line, only what it did: "operational-tables: webhookOutboxDeleted 1 ·
 * keys: rewrapped 2"; a true flag shows its name; all zero reads "nothing to do".
 */
export function countsLine(result: Record<string, unknown> | null): string {
  const parts = (value: Record<string, unknown>): string[] => Object.entries(value).flatMap(([k, v]) => {
    if (typeof v === 'number') return v !== 0 ? [`${k} ${v}`] : [];
    if (v === true) return [k];
    return [];
  });
  const groups: string[] = [];
  const top = parts(result ?? {});
  if (top.length) groups.push(top.join(', '));
  for (const [k, v] of Object.entries(result ?? {})) {
    if (!v || typeof v !== 'object') continue;
    const inner = parts(v as Record<string, unknown>);
    if (inner.length) groups.push(`${k}: ${inner.join(', ')}`);
  }
  return groups.length ? groups.join(' · ') : 'nothing to do';
}

/** What a run did: its counts (all of them in the tooltip), or its error code. */
function summary(r: JobRun) {
  if (r.outcome === 'failed') return <span>Error: <code>{r.error ?? 'unknown'}</code></span>;
  if (r.outcome === 'running') return <span className="muted">Still running</span>;
  if (r.outcome === 'abandoned') return <span className="muted">Never finished: its process stopped mid-run</span>;
  return <span className="wrap" title={r.result ? JSON.stringify(r.result) : undefined}>{countsLine(r.result)}</span>;
}

/**
 * The scheduled jobs: run one now (confirmed), each job's last run, and the recorded runs —
 * manual and scheduled, from every instance — newest first, filterable by job.
 */
export function Jobs() {
  const [version, setVersion] = useState(0);
  const [job, setJob] = useState('');
  const pages = useCursorPages();
  const jobs = useLoad(() => api<Page<JobInfo>>('GET', '/v1/jobs'), [version]);
  const runs = useLoad(() => api<Page<JobRun>>('GET', '/v1/job-runs', { query: { job, limit: 20, cursor: pages.cursor } }), [version, job, pages.cursor]);
  const confirm = useConfirm();
  const refresh = () => { pages.reset(); setVersion((v) => v + 1); };
  const known = jobs.data?.data ?? [];
  return (
    <>
      <h1>Jobs</h1>
      <p className="muted">The scheduler runs these on its own; every run, scheduled or started here, is recorded below. Run one now to see its effect without waiting.</p>
      <ErrorMessage error={jobs.error} what="The job list" />
      <ul className="job-list">
        {known.filter((j) => j.runnable).map((j) => {
          const info = JOBS[j.name] ?? { title: j.name, what: '' };
          return (
            <li key={j.name} className="card">
              <h2>{info.title}</h2>
              {info.what && <p>{info.what}</p>}
              <p className="small">Last run: {j.lastRun
                ? <>{formatTime(j.lastRun.startedAt)} ({j.lastRun.trigger}) <StatusBadge value={j.lastRun.outcome} /></>
                : <span className="muted">never</span>}</p>
              <button type="button" onClick={() => confirm.ask({
                title: `Run “${info.title}” now?`, body: <p>{info.what}</p>, confirmLabel: `Run ${info.title.toLowerCase()}`,
                run: async () => {
                  try { await api('POST', `/v1/jobs/${j.name}/run`, { body: {} }); } finally { refresh(); }
                },
              })}>Run {info.title.toLowerCase()} now…</button>
            </li>
          );
        })}
      </ul>
      <section className="card" aria-labelledby="h-runs" aria-busy={runs.loading}>
        <h2 id="h-runs">Recent runs</h2>
        <form className="row" onSubmit={(e) => e.preventDefault()} aria-label="Filter the runs">
          <div>
            <label htmlFor="runs-job">Job</label>
            <select id="runs-job" value={job} onChange={(e) => { pages.reset(); setJob(e.target.value); }}>
              <option value="">All jobs</option>
              {known.map((j) => <option key={j.name} value={j.name}>{titleOf(j.name)}</option>)}
            </select>
          </div>
          <button type="button" className="secondary" onClick={refresh}>Refresh</button>
        </form>
        {runs.error ? <ErrorMessage error={runs.error} what="The job runs" /> : !runs.data ? <Loading what="Loading runs" /> : (
          <>
            <Table<JobRun & Record<string, unknown>> caption="Job runs, newest first" rows={runs.data.data as Array<JobRun & Record<string, unknown>>}
              empty="No run recorded yet." className="cards-on-phone"
              columns={[
                { key: 'job', label: 'Job', render: (r) => titleOf(r.job) },
                { key: 'trigger', label: 'Trigger', render: (r) => (r.trigger === 'manual'
                  ? <span>manual{r.actorKeyId ? <> by <ShortId id={r.actorKeyId} /></> : null}</span> : 'scheduled') },
                { key: 'startedAt', label: 'Started' },
                { key: 'durationMs', label: 'Duration', render: (r) => duration(r.durationMs) },
                { key: 'outcome', label: 'Outcome', render: (r) => <StatusBadge value={r.outcome} /> },
                { key: 'result', label: 'Result', render: summary },
              ]} />
            <Pager label="Job run pages" hasPrev={pages.hasPrev} hasNext={Boolean(runs.data.nextCursor)}
              onPrev={pages.prev} onNext={() => pages.next(runs.data!.nextCursor)} />
          </>
        )}
      </section>
      {confirm.dialog}
    </>
  );
}
