import { useEffect, useRef, useState, type ReactNode } from 'react';
import { ApiError } from './api.ts';

export interface Loadable<T> { data: T | null; error: unknown; loading: boolean; reload: () => void }

/** Runs an async loader on mount and whenever deps change; keeps the last data while reloading. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loadable<T> {
  const [state, setState] = useState<{ data: T | null; error: unknown; loading: boolean }>({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  // The latest loader runs whenever a dependency changes (the loader itself may be one shared
  // function, e.g. loadApplications, so its identity cannot be the trigger).
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true, error: null }));
    loadRef.current().then(
      (data) => { if (live) setState({ data, error: null, loading: false }); },
      (error: unknown) => { if (live) setState({ data: null, error, loading: false }); },
    );
    return () => { live = false; };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return <p className="loading" role="status" aria-live="polite">{what}…</p>;
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}

/** A readable message for any error; "not available" when the API route does not exist on this server. */
export function ErrorMessage({ error, what }: { error: unknown; what?: string }) {
  if (!error) return null;
  if (error instanceof ApiError) {
    if (error.missingRoute) {
      return (
        <div className="notice" role="status">
          <strong>Not available</strong>
          <p>{what ?? 'This feature'} is not available on this server yet ({error.detail}).</p>
        </div>
      );
    }
    return (
      <div className="error" role="alert">
        <strong>{error.title}</strong>
        {error.detail && <p>{error.detail}</p>}
        {error.requestId && <p className="muted small">Request id {error.requestId}</p>}
      </div>
    );
  }
  return <div className="error" role="alert"><strong>Something went wrong</strong><p>{String((error as Error)?.message ?? error)}</p></div>;
}

/** Standard rendering of a Loadable: loading, error, or the content. */
export function Show<T>({ state, what, children }: { state: Loadable<T>; what?: string; children: (data: T) => ReactNode }) {
  if (state.error) return <ErrorMessage error={state.error} what={what} />;
  if (state.data === null) return <Loading what={`Loading ${what?.toLowerCase() ?? ''}`.trim()} />;
  return <>{children(state.data)}</>;
}

export function formatTime(value: unknown): string {
  if (typeof value !== 'string') return value === null || value === undefined ? '—' : String(value);
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return value;
  return d.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC');
}

const TIME_KEY = /(At|Since|Until|Time)$/;

/** Any value as text: dates formatted, objects as compact key=value lists. */
export function formatValue(key: string, value: unknown): ReactNode {
  if (value === null || value === undefined || value === '') return <span className="muted">—</span>;
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'string' && TIME_KEY.test(key)) return <time dateTime={value}>{formatTime(value)}</time>;
  if (Array.isArray(value)) return value.length === 0 ? <span className="muted">none</span> : value.map((v) => (typeof v === 'object' ? JSON.stringify(v) : String(v))).join(', ');
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return <span className="muted">none</span>;
    return entries.map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(', ');
  }
  return String(value);
}

export function humanize(key: string): string {
  const s = key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/[-_]/g, ' ').toLowerCase();
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** A definition list of an object's fields. */
export function Fields({ value, omit = [], label }: { value: Record<string, unknown>; omit?: string[]; label?: string }) {
  return (
    <dl className="fields" aria-label={label}>
      {Object.entries(value).filter(([k]) => !omit.includes(k)).map(([k, v]) => (
        <div key={k}><dt>{humanize(k)}</dt><dd>{formatValue(k, v)}</dd></div>
      ))}
    </dl>
  );
}

export interface Column<T> { key: string; label: string; render?: (row: T) => ReactNode }

export function Table<T extends Record<string, unknown>>({ rows, columns, caption, empty = 'Nothing here yet.', className }: {
  rows: T[]; columns: Array<Column<T>>; caption: string; empty?: string;
  /** "cards-on-phone": each row becomes a card of label/value pairs on a narrow screen. */
  className?: string;
}) {
  if (rows.length === 0) return <Empty>{empty}</Empty>;
  return (
    <div className="table-wrap">
      <table className={className}>
        <caption className="sr-only">{caption}</caption>
        <thead><tr>{columns.map((c) => <th key={c.key} scope="col">{c.label}</th>)}</tr></thead>
        <tbody>
          {rows.map((row, i) => (
            <tr key={String(row.id ?? row.seq ?? i)}>
              {columns.map((c) => <td key={c.key} data-label={c.label}>{c.render ? c.render(row) : formatValue(c.key, row[c.key])}</td>)}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Derived columns from the keys of the first rows, for records whose shape the console need not know. */
export function autoColumns<T extends Record<string, unknown>>(rows: T[], omit: string[] = []): Array<Column<T>> {
  const keys: string[] = [];
  for (const r of rows.slice(0, 20)) for (const k of Object.keys(r)) if (!keys.includes(k) && !omit.includes(k)) keys.push(k);
  return keys.map((k) => ({ key: k, label: humanize(k) }));
}

/** A modal dialog (native <dialog>: focus trapped, Escape closes). */
export function Dialog({ open, onClose, title, children }: { open: boolean; onClose: () => void; title: string; children: ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    // A nested dialog's close event reaches this one through React's tree: only its own counts.
    <dialog ref={ref} onClose={(e) => { if (e.target === e.currentTarget) onClose(); }} aria-labelledby="dialog-title" className="dialog">
      <div className="dialog-head">
        <h2 id="dialog-title">{title}</h2>
        <button type="button" className="link" onClick={onClose} aria-label="Close dialog">✕</button>
      </div>
      {open && children}
    </dialog>
  );
}

/** A button that runs an async action, shows it is busy, and reports its error next to it. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async (fn: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try { await fn(); } catch (e) { setError(e); } finally { setBusy(false); }
  };
  return { busy, error, run, clear: () => setError(null) };
}

export function StatusBadge({ value }: { value: string }) {
  return <span className={`badge badge-${value.replace(/[^a-z_]/gi, '')}`}>{value}</span>;
}

export function Pager({ hasPrev, hasNext, onPrev, onNext, label }: { hasPrev: boolean; hasNext: boolean; onPrev: () => void; onNext: () => void; label: string }) {
  if (!hasPrev && !hasNext) return null;
  return (
    <nav className="pager" aria-label={label}>
      <button type="button" onClick={onPrev} disabled={!hasPrev}>← Previous</button>
      <button type="button" onClick={onNext} disabled={!hasNext}>Next →</button>
    </nav>
  );
}

/** Cursor pagination state: a stack of cursors. */
export function useCursorPages() {
  const [stack, setStack] = useState<Array<string | null>>([null]);
  const cursor = stack[stack.length - 1] ?? null;
  return {
    cursor,
    page: stack.length,
    hasPrev: stack.length > 1,
    next: (c: string | null) => { if (c) setStack((s) => [...s, c]); },
    prev: () => setStack((s) => (s.length > 1 ? s.slice(0, -1) : s)),
    reset: () => setStack([null]),
  };
}
