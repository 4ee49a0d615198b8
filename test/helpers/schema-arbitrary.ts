import fc from 'fast-check';

/** A JSON Schema as the OpenAPI document carries it (the subset our routes use). */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  maxProperties?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  $ref?: string;
}

const FORMATS: Record<string, fc.Arbitrary<string>> = {
  uuid: fc.uuid(),
  email: fc.emailAddress(),
  'date-time': fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString()),
  ipv4: fc.ipV4(),
  ipv6: fc.ipV6(),
  uri: fc.webUrl(),
};

/** Strings that have broken services before: quotes, NUL, lone surrogates, RTL, huge numbers as text. */
export const HOSTILE_STRINGS = [
  "'", "''; DROP TABLE customers; --", '\u0000', 'a\u0000b', '\uD800', '\uDFFF', 'x\uD83D', '\u202E', '%00', '../../etc/passwd',
  '${jndi:ldap://x}', '<script>alert(1)</script>', '9007199254740993', '-0', 'NaN', ' ', '\n', '\\', '"', '{}', '[]',
  '\uFEFF', '\u00A0', 'é', '🙂', '0x7f000001',
];

/** An arbitrary producing values that satisfy the schema (as far as our subset goes). */
export function valid(schema: JsonSchema, depth = 0): fc.Arbitrary<unknown> {
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const alts = schema.anyOf ?? schema.oneOf;
  if (alts) return fc.oneof(...alts.map((s) => valid(s, depth)));
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'string': {
      if (schema.format && FORMATS[schema.format]) return FORMATS[schema.format]!;
      if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern));
      const maxLength = Math.min(schema.maxLength ?? 40, 40);
      return fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.max(maxLength, schema.minLength ?? 0) });
    }
    case 'integer': return fc.integer({ min: schema.minimum ?? -1_000_000, max: schema.maximum ?? 1_000_000 });
    case 'number': return fc.double({ min: schema.minimum ?? -1e6, max: schema.maximum ?? 1e6, noNaN: true });
    case 'boolean': return fc.boolean();
    case 'null': return fc.constant(null);
    case 'array': return fc.array(valid(schema.items ?? {}, depth + 1), { minLength: schema.minItems ?? 0, maxLength: Math.min(schema.maxItems ?? 3, 3) });
    case 'object': {
      const props = schema.properties ?? {};
      const required = new Set(schema.required ?? []);
      const record: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [k, s] of Object.entries(props)) record[k] = valid(s, depth + 1);
      const base = fc.record(record, { requiredKeys: [...required].filter((k) => k in props) });
      if (typeof schema.additionalProperties === 'object' && Object.keys(props).length === 0) {
        return fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), valid(schema.additionalProperties, depth + 1), { maxKeys: Math.min(schema.maxProperties ?? 3, 3) });
      }
      return base;
    }
    default: return fc.jsonValue({ maxDepth: 2 });
  }
}

/** An arbitrary producing values that are probably invalid for the schema, or hostile. */
export function invalid(schema: JsonSchema): fc.Arbitrary<unknown> {
  const hostile = fc.constantFrom<unknown>(...HOSTILE_STRINGS);
  const weird = fc.constantFrom<unknown>(
    null, true, -1, 0, 2 ** 53 + 2, 1e308, -1e308, 1.5, '', [], {}, [[[[[]]]]], { a: { b: { c: {} } } }, 'x'.repeat(5000),
  );
  const options: fc.Arbitrary<unknown>[] = [hostile, weird, fc.jsonValue({ maxDepth: 3 })];
  if ((schema.type === 'object' || schema.properties) && schema.properties) {
    const keys = Object.keys(schema.properties);
    // A valid object with one property replaced by something hostile or of the wrong type.
    if (keys.length > 0) {
      options.push(fc.tuple(valid(schema), fc.constantFrom(...keys), fc.oneof(hostile, weird)).map(([v, k, bad]) => ({ ...(v as object), [k]: bad })));
    }
    options.push(fc.tuple(valid(schema), fc.string({ minLength: 1, maxLength: 10 })).map(([v, k]) => ({ ...(v as object), [`x_${k}`]: 1 })));
  }
  return fc.oneof(...options);
}
