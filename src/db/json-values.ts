import { type RawBuilder, sql } from 'kysely';

/**
 * Values read through SQL json (json_agg, json_build_array, …) beside the driver's own rows, so
 * that both read alike.
 */

const ISO_UTC_FORMAT = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;

/**
 * A timestamptz column as the text a JS Date of the driver's value gives with toISOString()
 * (UTC, milliseconds truncated): what the driver's Date becomes in JSON.
 */
export const isoUtcText = (column: string): RawBuilder<string> =>
  sql<string>`to_char(date_trunc('milliseconds', ${sql.ref(column)}) AT TIME ZONE 'UTC', ${sql.raw(ISO_UTC_FORMAT)})`;

/** The same as SQL text, for statements that take no parameters (COPY): `expr` is trusted SQL. */
export const isoUtcSql = (expr: string): string =>
  `to_char(date_trunc('milliseconds', ${expr}) AT TIME ZONE 'UTC', ${ISO_UTC_FORMAT})`;

/** A json value as read: parsed already by the driver, or its text (parsed here). */
export const fromJson = <T>(value: unknown): T => (typeof value === 'string' ? JSON.parse(value) : value) as T;
