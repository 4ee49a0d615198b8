import { download } from '../api.ts';
import { ErrorMessage, useAction } from '../ui.tsx';

const DATASETS = [
  { id: 'customers', label: 'Customers', help: 'Every customer; deleted ones pseudonymized.' },
  { id: 'transactions', label: 'Transactions', help: 'Every transaction, including those preserved after a deletion.' },
  { id: 'activity', label: 'Activity', help: 'Customer activity entries.' },
];

/** Dataset exports (GET /v1/exports/{dataset}); deleted customers appear only as pseudonyms. */
export function Exports() {
  const action = useAction();
  return (
    <>
      <h1>Exports</h1>
      <p>Analytics-ready exports. Rows of deleted customers carry a keyed pseudonym instead of their id and personal fields.</p>
      <div className="table-wrap">
        <table>
          <caption className="sr-only">Datasets</caption>
          <thead><tr><th scope="col">Dataset</th><th scope="col">Contents</th><th scope="col">Download</th></tr></thead>
          <tbody>
            {DATASETS.map((d) => (
              <tr key={d.id}>
                <td>{d.label}</td>
                <td>{d.help}</td>
                <td className="actions">
                  {(['csv', 'jsonl'] as const).map((f) => (
                    <button key={f} type="button" className="secondary" disabled={action.busy}
                      aria-label={`Download ${d.label} as ${f.toUpperCase()}`}
                      onClick={() => void action.run(() => download(`/v1/exports/${d.id}`, `${d.id}.${f}`, { format: f }))}>
                      {f.toUpperCase()}
                    </button>
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {action.busy && <p className="loading" role="status">Preparing the download…</p>}
      <ErrorMessage error={action.error} what="Exports" />
    </>
  );
}
