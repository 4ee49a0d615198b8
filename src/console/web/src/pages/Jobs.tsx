import { useState } from 'react';
import { api } from '../api.ts';
import { useConfirm } from '../confirm.tsx';
import { formatValue, formatTime } from '../ui.tsx';

const JOBS = [
  { name: 'grace-periods', title: 'Grace periods', what: 'Makes deletion cases whose grace period ended required (and, if enabled, deletes customers who hold no license any more).' },
  { name: 'deletion-notifications', title: 'Deletion notifications', what: "Sends today's data_deletion.required notices to applications (never twice in one day)." },
  { name: 'retention', title: 'Retention', what: 'Purges expired backups and operational rows, runs the redaction backlog.' },
] as const;

interface Run { job: string; at: string; ok: boolean; result: unknown }
const STORE = 'lethe.jobRuns';

function loadRuns(): Run[] {
  try { return JSON.parse(sessionStorage.getItem(STORE) ?? '[]') as Run[]; } catch { return []; }
}

/** Runs a scheduled job now; the results of the runs started here are listed (this browser session). */
export function Jobs() {
  const [runs, setRuns] = useState<Run[]>(loadRuns);
  const confirm = useConfirm();
  const record = (r: Run) => {
    const next = [r, ...runs].slice(0, 20);
    setRuns(next);
    sessionStorage.setItem(STORE, JSON.stringify(next));
  };
  return (
    <>
      <h1>Jobs</h1>
      <p className="muted">The scheduler runs these on its own. Run one now to see its effect without waiting.</p>
      <ul className="job-list">
        {JOBS.map((j) => (
          <li key={j.name} className="card">
            <h2>{j.title}</h2>
            <p>{j.what}</p>
            <button type="button" onClick={() => confirm.ask({
              title: `Run “${j.title}” now?`, body: <p>{j.what}</p>, confirmLabel: `Run ${j.title.toLowerCase()}`,
              run: async () => {
                try {
                  const r = await api<{ result: unknown }>('POST', `/v1/jobs/${j.name}/run`, { body: {} });
                  record({ job: j.name, at: new Date().toISOString(), ok: true, result: r.result });
                } catch (e) {
                  record({ job: j.name, at: new Date().toISOString(), ok: false, result: (e as Error).message });
                  throw e;
                }
              },
            })}>Run {j.title.toLowerCase()} now…</button>
          </li>
        ))}
      </ul>
      <section className="card" aria-labelledby="h-runs">
        <h2 id="h-runs">Recent runs</h2>
        {runs.length === 0 ? <p className="empty">No job run from this console session yet.</p> : (
          <ol className="runs" aria-label="Recent runs, newest first">
            {runs.map((r) => (
              <li key={`${r.at}-${r.job}`}>
                <strong>{r.job}</strong> at {formatTime(r.at)}: {r.ok ? 'done' : 'failed'}
                <div className="small wrap">{typeof r.result === 'object' && r.result ? formatValue('result', r.result) : String(r.result)}</div>
              </li>
            ))}
          </ol>
        )}
      </section>
      {confirm.dialog}
    </>
  );
}
