import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { exportColumns, jsonlLine, jsonlPrefixes } from '../src/exports/exports.service.ts';

// The export writes JSONL value by value (no object per row): the text must be exactly what
// JSON.stringify of the row's object gave before, for every value a row can hold.
const columns = exportColumns('customers');
const prefixes = jsonlPrefixes(columns);
const asObject = (values: unknown[]) => JSON.stringify(Object.fromEntries(columns.map((c, i) => [c.name, values[i]]))) + '\n';

const value = fc.oneof(
  fc.constant(null), fc.string(), fc.string({ unit: 'binary' }), fc.boolean(), fc.integer(), fc.double(),
  fc.date({ noInvalidDate: false }), fc.jsonValue(), fc.dictionary(fc.string(), fc.jsonValue()),
  fc.constant(undefined), fc.constant(() => 1),
);

describe('export JSONL lines', () => {
  it('equal JSON.stringify of the row object, whatever the values', () => {
    fc.assert(fc.property(fc.array(value, { minLength: columns.length, maxLength: columns.length }), (values) => {
      expect(jsonlLine(columns, prefixes, values)).toBe(asObject(values));
    }), { numRuns: 2000 });
  });

  it('equal it for the values an export row holds (dates, quotes, controls, non-ASCII, nested metadata)', () => {
    const values = columns.map((c, i) => [
      'c1b0a3a4-0000-4000-8000-000000000001', new Date('2026-11-27T13:00:00.123Z'), new Date(Number.NaN), true,
      'Q "1"\t\\ \n é \u2028 \ud800', 0, -0, 1.5e300, { favouriteColour: 'blue', tier: 'gold "x"' }, [1, 'a'],
    ][i % 10]);
    expect(jsonlLine(columns, prefixes, values)).toBe(asObject(values));
  });
});
