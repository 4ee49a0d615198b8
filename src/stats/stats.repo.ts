import { sql } from 'kysely';
import type { Db } from '../db/database.ts';

export interface DayStats {
  day: string;
  deletions: number;
  casesRequired: number;
  confirmations: Record<string, number>;
  overdueAtEndOfDay: number;
}

export interface ApplicationTiming {
  applicationId: string;
  confirmed: number;
  medianSecondsToConfirm: number | null;
  p95SecondsToConfirm: number | null;
}

const n = (v: unknown) => Number(v ?? 0);

/**
 * Per local day (zone) from `from` to `to` inclusive (YYYY-MM-DD): deletions, cases that became
 * required, confirmations by outcome, and cases overdue at the day's end. Events are bucketed by
 * the local day they happened on. A case's required moments are its current `required_since`
 * and those recorded with its confirmations (a reopened case counts each time).
 */
export async function dailyStats(db: Db, q: { from: string; to: string; zone: string; overdueAfterDays: number }): Promise<DayStats[]> {
  const { from, to, zone } = q;
  const start = sql`(${from}::timestamp AT TIME ZONE ${zone})`;
  const end = sql`((${to}::timestamp + interval '1 day') AT TIME ZONE ${zone})`;
  const day = (col: string) => sql`to_char((${sql.ref(col)} AT TIME ZONE ${zone}), 'YYYY-MM-DD')`;

  const deletions = await sql<{ day: string; n: number }>`
    SELECT ${day('deleted_at')} AS day, count(*) AS n FROM deletions
    WHERE deleted_at >= ${start} AND deleted_at < ${end} GROUP BY 1`.execute(db);
  const required = await sql<{ day: string; n: number }>`
    SELECT ${day('r')} AS day, count(*) AS n FROM (
      SELECT id AS case_id, required_since AS r FROM deletion_cases WHERE required_since IS NOT NULL
      UNION
      SELECT case_id, required_since AS r FROM deletion_confirmations WHERE required_since IS NOT NULL
    ) x WHERE r >= ${start} AND r < ${end} GROUP BY 1`.execute(db);
  const confirmations = await sql<{ day: string; outcome: string; n: number }>`
    SELECT ${day('confirmed_at')} AS day, outcome, count(*) AS n FROM deletion_confirmations
    WHERE confirmed_at >= ${start} AND confirmed_at < ${end} GROUP BY 1, 2`.execute(db);
  const overdue = await sql<{ day: string; n: number }>`
    SELECT to_char(d, 'YYYY-MM-DD') AS day, (
      SELECT count(*) FROM deletion_cases c
      WHERE c.status IN ('required', 'confirmed') AND c.required_since IS NOT NULL
        AND c.required_since < ((d + interval '1 day') AT TIME ZONE ${zone}) - make_interval(days => ${q.overdueAfterDays}::int)
        AND (c.confirmed_at IS NULL OR c.confirmed_at >= ((d + interval '1 day') AT TIME ZONE ${zone}))
    ) AS n
    FROM generate_series(${from}::timestamp, ${to}::timestamp, interval '1 day') AS d`.execute(db);

  const days = overdue.rows.map((r) => r.day);
  const byDay = new Map<string, DayStats>(days.map((d) => [d, { day: d, deletions: 0, casesRequired: 0, confirmations: { deleted: 0, no_data_held: 0 }, overdueAtEndOfDay: 0 }]));
  for (const r of deletions.rows) { const s = byDay.get(r.day); if (s) s.deletions = n(r.n); }
  for (const r of required.rows) { const s = byDay.get(r.day); if (s) s.casesRequired = n(r.n); }
  for (const r of confirmations.rows) { const s = byDay.get(r.day); if (s) s.confirmations[r.outcome] = n(r.n); }
  for (const r of overdue.rows) { const s = byDay.get(r.day); if (s) s.overdueAtEndOfDay = n(r.n); }
  return [...byDay.values()];
}

/** Per application, over confirmations made in the range: median and 95th percentile of required → confirmed. */
export async function applicationTimings(db: Db, q: { from: string; to: string; zone: string }): Promise<ApplicationTiming[]> {
  const r = await sql<{ applicationId: string; confirmed: number; median: number | null; p95: number | null }>`
    SELECT application_id, count(*) AS confirmed,
      percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM confirmed_at - required_since)) AS median,
      percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM confirmed_at - required_since)) AS p95
    FROM deletion_confirmations
    WHERE required_since IS NOT NULL
      AND confirmed_at >= (${q.from}::timestamp AT TIME ZONE ${q.zone})
      AND confirmed_at < ((${q.to}::timestamp + interval '1 day') AT TIME ZONE ${q.zone})
    GROUP BY application_id ORDER BY application_id`.execute(db);
  return r.rows.map((x) => ({
    applicationId: x.applicationId, confirmed: n(x.confirmed),
    medianSecondsToConfirm: x.median === null ? null : Math.round(Number(x.median)),
    p95SecondsToConfirm: x.p95 === null ? null : Math.round(Number(x.p95)),
  }));
}
