/**
 * Calendar arithmetic in an IANA time zone with nothing but Intl: the local calendar day of an
 * instant, and the instant a local wall-clock time happens on a local day — DST-correct.
 *
 * - A wall time that happens twice (autumn fall-back) resolves to its FIRST occurrence, so a
 *   daily job never runs twice that day.
 * - A wall time that does not exist (spring-forward gap, e.g. 02:30 in Europe/Berlin on
 *   2026-03-29) resolves to the first instant after the gap (03:00 local there).
 */

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Whether `timeZone` is an IANA zone this runtime knows. */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

const TIME_RE = /^([01]\d|2[0-3]):([0-5]\d)$/;
export const isValidTime = (time: string) => TIME_RE.test(time);

interface Wall { y: number; mo: number; d: number; h: number; mi: number; s: number }

function wallOf(instantMs: number, timeZone: string): Wall {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(instantMs))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  return { y: parts.year!, mo: parts.month!, d: parts.day!, h: parts.hour!, mi: parts.minute!, s: parts.second! };
}

/** The local wall clock of an instant, as if it were UTC (ms), milliseconds kept. */
function wallMs(instantMs: number, timeZone: string): number {
  const w = wallOf(instantMs, timeZone);
  return Date.UTC(w.y, w.mo - 1, w.d, w.h, w.mi, w.s) + (((instantMs % 1000) + 1000) % 1000);
}

const pad = (n: number, len = 2) => String(n).padStart(len, '0');

/** The local calendar day (YYYY-MM-DD) of `at` in `timeZone`. */
export function localDay(at: Date, timeZone: string): string {
  const w = wallOf(at.getTime(), timeZone);
  return `${pad(w.y, 4)}-${pad(w.mo)}-${pad(w.d)}`;
}

/** The calendar day after `day` (YYYY-MM-DD). */
export function nextDay(day: string): string {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}

/**
 * The instant at which the local wall time `time` (HH:MM) happens on local calendar day `day`
 * in `timeZone`: the first occurrence when it happens twice, the first instant after the gap
 * when it does not exist.
 */
export function instantOf(day: string, time: string, timeZone: string): Date {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  const [hh, mm] = time.split(':').map(Number) as [number, number];
  const wall = Date.UTC(y, m - 1, d, hh, mm);
  // Offsets in force around that day (zones change offset at most once around one wall time).
  const offsets = [...new Set([-36, -12, 0, 12, 36].map((h) => {
    const t = wall + h * 3600_000;
    return wallMs(t, timeZone) - t;
  }))];
  const exact = offsets.map((o) => wall - o).filter((t) => wallMs(t, timeZone) === wall).sort((a, b) => a - b);
  if (exact.length > 0) return new Date(exact[0]!);
  // A gap: the first instant whose wall clock is past `wall`. Between these bounds the wall clock
  // only moves forward, so a binary search finds the transition.
  let lo = wall - Math.max(...offsets); // wall clock still before `wall`
  let hi = wall - Math.min(...offsets); // wall clock already after `wall`
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (wallMs(mid, timeZone) >= wall) hi = mid; else lo = mid;
  }
  return new Date(hi);
}

/** The next instant strictly after `after` at which the local time is `time` in `timeZone`. */
export function nextOccurrence(after: Date, time: string, timeZone: string): Date {
  let day = localDay(after, timeZone);
  for (let i = 0; i < 3; i++) {
    const t = instantOf(day, time, timeZone);
    if (t.getTime() > after.getTime()) return t;
    day = nextDay(day);
  }
  return instantOf(day, time, timeZone);
}

/** An IANA zone name ("Europe/Berlin", "UTC"), canonicalized; offsets such as "+02:00" are refused. */
export function canonicalTimeZone(tz: string): string | null {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(tz)) return null;
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}
