/** An amount in minor units with its currency, e.g. 4999 EUR → "€49.99". */
export function formatMoney(amountMinor: unknown, currency: unknown): string {
  const cur = typeof currency === 'string' ? currency.toUpperCase() : '';
  const n = Number(amountMinor);
  if (!Number.isFinite(n) || !/^[A-Z]{3}$/.test(cur)) return `${String(amountMinor)} ${cur}`.trim();
  try {
    const f = new Intl.NumberFormat('en', { style: 'currency', currency: cur });
    const digits = f.resolvedOptions().maximumFractionDigits ?? 2;
    return f.format(n / 10 ** digits);
  } catch {
    return `${(n / 100).toFixed(2)} ${cur}`;
  }
}

/** An id shortened for tables (first 8 characters); the full id is in the title and for screen readers. */
export function ShortId({ id }: { id: string }) {
  return <code className="short-id" title={id}><span aria-hidden="true">{id.slice(0, 8)}…</span><span className="sr-only">{id}</span></code>;
}

/** A duration in seconds as "3 d 4 h", "5 h 2 min", "40 s". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}
