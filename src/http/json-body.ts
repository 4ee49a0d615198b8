import type { FastifyInstance, FastifyRequest } from 'fastify';
import { visit } from 'jsonc-parser';
import { AppError } from './errors.ts';

const MAX_DEPTH = 32;
// NUL cannot be stored in PostgreSQL text; a lone surrogate has no UTF-8 form and would be
// silently replaced. Both are refused rather than altered.
// A leading byte-order mark is dropped by the embedded database's text decoding, so such a
// value would not read back as written: refused too.
const BAD_CHAR = /\u0000|^\uFEFF|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const bad = (detail: string) => new AppError('validation_failed', detail);

function describePath(path: Array<string | number>): string {
  return path.length === 0 ? 'body' : `body/${path.join('/')}`;
}

/** Refuses strings no database can hold faithfully, `__proto__` keys and absurd nesting; iterative, so depth cannot overflow the stack. */
export function checkJsonValue(root: unknown, where = 'body'): void {
  const stack: Array<{ value: unknown; path: Array<string | number> }> = [{ value: root, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (path.length > MAX_DEPTH) throw bad(`${where}: nesting deeper than ${MAX_DEPTH} levels`);
    if (typeof value === 'string') {
      if (BAD_CHAR.test(value)) throw bad(`${describePath(path)}: contains a NUL character, an unpaired surrogate or a leading byte-order mark`);
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => stack.push({ value: v, path: [...path, i] }));
    } else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        if (k === '__proto__') throw bad(`${describePath(path)}: the key "__proto__" is not allowed`);
        if (BAD_CHAR.test(k)) throw bad(`${describePath(path)}: a key contains a NUL character or an unpaired surrogate`);
        stack.push({ value: v, path: [...path, k] });
      }
    }
  }
}

/** Finds a key given twice in one object: JSON.parse would silently keep the last. */
function duplicateKey(text: string): string | null {
  const scopes: Array<Set<string>> = [];
  let found: string | null = null;
  visit(text, {
    onObjectBegin: () => { scopes.push(new Set()); },
    onObjectEnd: () => { scopes.pop(); },
    onObjectProperty: (property) => {
      const keys = scopes[scopes.length - 1];
      if (!keys || found) return;
      if (keys.has(property)) found = property;
      keys.add(property);
    },
  });
  return found;
}

/**
 * The JSON body parser: strict JSON.parse, then the checks above and a duplicate-key scan,
 * all as 400 validation_failed naming the problem.
 */
export function registerJsonBody(app: FastifyInstance, bodyLimit: number) {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit }, (_request, text, done) => {
    const raw = text as string;
    if (raw.length === 0) return done(bad('Malformed request body: empty JSON body'), undefined);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      return done(bad(`Malformed request body: ${(error as Error).message}`), undefined);
    }
    try {
      checkJsonValue(value);
      const dup = duplicateKey(raw);
      if (dup !== null) return done(bad(`body: duplicate key "${dup}"`), undefined);
    } catch (error) {
      if (error instanceof AppError) return done(error, undefined);
      return done(bad('Malformed request body: nesting too deep'), undefined);
    }
    done(null, value);
  });
  // Query strings and path parameters are decoded text: the same characters are refused there.
  app.addHook('preValidation', async (request: FastifyRequest) => {
    // Raw image bodies are parsed for every route; a route that declares a JSON body refuses them.
    if (Buffer.isBuffer(request.body) && request.routeOptions.schema?.body) {
      throw new AppError('unsupported_media_type', `This route takes application/json, not ${request.headers['content-type'] ?? 'no content type'}`);
    }
    for (const [part, obj] of [['querystring', request.query], ['params', request.params]] as const) {
      if (!obj || typeof obj !== 'object') continue;
      for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
        const values = Array.isArray(v) ? v : [v];
        if (values.some((x) => typeof x === 'string' && BAD_CHAR.test(x))) {
          throw bad(`${part}/${k}: contains a NUL character or an unpaired surrogate`);
        }
      }
    }
  });
}
