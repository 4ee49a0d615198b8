import { type RawBuilder, sql } from 'kysely';
import type { MaskShape } from './data-map.ts';
import { maskValue as maskInProcess } from './mask-values.ts';

/**
 * Shape-keeping masks, computed by the database so a batch of customers is redacted with one
 * UPDATE per table. Every value comes from gen_random_uuid()/random() evaluated per row: it is
 * not derived from the original (nothing to reverse, no dictionary to try) and differs between
 * customers and between fields. Where a shape has few values (digits, month, year) the mask is
 * also made to differ from the original.
 */
const hex = (n: number) => sql.raw(`substr(md5(gen_random_uuid()::text), 1, ${n})`);
const letters = (n: number) => sql.raw(`translate(substr(md5(gen_random_uuid()::text), 1, ${n}), '0123456789abcdef', 'aeioubdfgklmnprs')`);

function maskValue(shape: Exclude<MaskShape, 'metadata'>, col: RawBuilder<unknown>): RawBuilder<unknown> {
  switch (shape) {
    // An address at a reserved top-level domain (RFC 2606): valid, never deliverable.
    case 'email': return sql`'masked.' || ${hex(10)} || '@' || ${hex(12)} || '.invalid'`;
    // Letters only, capitalized: still looks like a name ("Kabemoru").
    case 'name': return sql`initcap(${letters(8)})`;
    // +999 is an unassigned country calling code.
    case 'phone': return sql`'+999 ' || translate(${hex(9)}, 'abcdef', '012345')`;
    case 'text': return sql`'masked-' || ${hex(12)}`;
    case 'token': return sql`'masked_' || replace(gen_random_uuid()::text, '-', '')`;
    // As many digits as the original (1 to 32), never the original itself.
    case 'digits': return sql`(SELECT CASE WHEN m = ${col} THEN translate(m, '0123456789', '1234567890') ELSE m END
      FROM (SELECT translate(substr(md5(gen_random_uuid()::text), 1, greatest(1, least(length(${col}), 32))), 'abcdef', '012345') AS m) AS x)`;
    // Card expiry is stored as text since 0010 (crypto-shredding); these SQL masks serve clear values only.
    case 'month': return sql`(((${col})::int + floor(random() * 11)::int) % 12) + 1`;
    case 'year': return sql`2000 + ((((${col})::int - 1999 + floor(random() * 99)::int) % 100) + 100) % 100`;
    // Same family as the original, inside ranges reserved for documentation/benchmarks.
    case 'ip': return sql`CASE WHEN ${col} LIKE '%:%'
      THEN '2001:db8:' || ${hex(4)} || ':' || ${hex(4)} || '::' || ${hex(4)}
      ELSE '198.18.' || floor(random() * 256)::int || '.' || (1 + floor(random() * 254)::int) END`;
  }
}

/** The SQL expression that masks column `column` (NULL stays NULL; metadata keeps its keys). */
export function maskSql(shape: MaskShape, column: string): RawBuilder<unknown> {
  const col = sql.ref(column) as unknown as RawBuilder<unknown>;
  if (shape === 'metadata') {
    return sql`(SELECT coalesce(jsonb_object_agg(k, 'masked-' || ${hex(12)}), '{}'::jsonb) FROM jsonb_object_keys(${col}) AS k)`;
  }
  return sql`CASE WHEN ${col} IS NULL THEN NULL ELSE ${maskValue(shape, col)} END`;
}

/** Nullify: SET NULL, except a NOT NULL JSON object, which is emptied. */
export function nullifySql(shape: MaskShape | undefined): RawBuilder<unknown> {
  return shape === 'metadata' ? sql`'{}'::jsonb` : sql`NULL`;
}

/**
 * Masks the identifying details of an activity entry in place of the database (the one kept
 * `customer.deleted` entry): every string becomes a random value of a like shape, numbers and
 * booleans (counts) stay.
 */
export function maskDetails(value: unknown, key = ''): unknown {
  if (typeof value === 'string') return maskInProcess(/e-?mail/i.test(key) ? 'email' : 'name', value);
  if (Array.isArray(value)) return value.map((v) => maskDetails(v, key));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskDetails(v, k)]));
  }
  return value;
}
