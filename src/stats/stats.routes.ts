import { Type } from 'typebox';
import type { Ctx } from '../context.ts';
import { validation } from '../http/errors.ts';
import { errors } from '../http/schemas.ts';
import type { TypedApp } from '../plugin/registry.ts';
import { readSettingsSection } from '../settings/settings.repo.ts';
import { applicationTimings, dailyStats } from './stats.repo.ts';

const Day = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'A local calendar day, YYYY-MM-DD' });
const MAX_DAYS = 366;

export const StatsSchema = Type.Object({
  from: Day, to: Day, zone: Type.String(),
  days: Type.Array(Type.Object({
    day: Day,
    deletions: Type.Integer(),
    casesRequired: Type.Integer({ description: 'Deletion cases that became required that day' }),
    confirmations: Type.Record(Type.String(), Type.Integer(), { description: 'Confirmations given that day, by outcome' }),
    overdueAtEndOfDay: Type.Integer(),
  })),
  applications: Type.Array(Type.Object({
    applicationId: Type.String({ format: 'uuid' }),
    confirmed: Type.Integer(),
    medianSecondsToConfirm: Type.Union([Type.Integer(), Type.Null()]),
    p95SecondsToConfirm: Type.Union([Type.Integer(), Type.Null()]),
  })),
});

/** The local calendar day of `at` in `zone` (YYYY-MM-DD). */
export function localDay(at: Date, zone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(at);
}

function validZone(zone: string): boolean {
  try { new Intl.DateTimeFormat('en', { timeZone: zone }); return true; } catch { return false; }
}

function validDay(d: string): boolean {
  const t = Date.parse(`${d}T00:00:00Z`);
  return !Number.isNaN(t) && new Date(t).toISOString().slice(0, 10) === d;
}

export function registerStatsRoutes(app: TypedApp, ctx: Ctx) {
  app.get('/v1/stats', {
    config: { access: 'operator' },
    schema: {
      tags: ['stats'], operationId: 'getStats',
      summary: 'Per local day: deletions, cases required, confirmations by outcome, overdue at day end; per application time to confirm',
      querystring: Type.Object({
        from: Type.Optional(Day), to: Type.Optional(Day),
        zone: Type.Optional(Type.String({ maxLength: 64, description: 'IANA time zone; defaults to settings.notificationTimeZone' })),
      }, { additionalProperties: false }),
      response: { 200: StatsSchema, ...errors() },
    },
  }, async (request) => {
    const q = request.query;
    const settings = await readSettingsSection(ctx.db, 'notifications');
    const zone = q.zone ?? settings.notificationTimeZone;
    if (!validZone(zone)) throw validation('querystring.zone is not an IANA time zone');
    const to = q.to ?? localDay(ctx.clock.now(), zone);
    if (!validDay(to)) throw validation('querystring.to is not a calendar day');
    const from = q.from ?? new Date(Date.parse(`${to}T00:00:00Z`) - 29 * 86_400_000).toISOString().slice(0, 10);
    if (!validDay(from)) throw validation('querystring.from is not a calendar day');
    const span = (Date.parse(to) - Date.parse(from)) / 86_400_000;
    if (span < 0) throw validation('querystring.from is after querystring.to');
    if (span >= MAX_DAYS) throw validation(`at most ${MAX_DAYS} days at a time`);
    const days = await dailyStats(ctx.db, { from, to, zone, overdueAfterDays: settings.overdueAfterDays });
    const applications = await applicationTimings(ctx.db, { from, to, zone });
    return { from, to, zone, days, applications };
  });
}
