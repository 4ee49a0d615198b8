import { CompiledQuery } from 'kysely';
import type { Db } from './database.ts';
import { urgent } from './prepared-client.ts';
import { toCamel } from '../erasure/data-map.ts';

/**
 * SQL built as text with positional parameters, for the large statements generated per request
 * from declarations (the DELETE's cascade): Kysely builds, freezes, transforms and compiles a
 * node per fragment, which cost more CPU than the statement's own execution. The text depends
 * only on the declarations' shape, so it is the same text (one prepared statement) every time.
 * Values never enter the text: `param` adds one and returns its placeholder.
 */
export class SqlText {
  readonly values: unknown[] = [];

  /** `$n` for a new parameter holding `value`, cast to `type` when given. */
  param(value: unknown, type?: string): string {
    this.values.push(value);
    return type ? `$${this.values.length}::${type}` : `$${this.values.length}`;
  }

  /** `$a, $b, …` for a list of values (an IN list). */
  list(values: readonly unknown[], type?: string): string {
    return values.map((v) => this.param(v, type)).join(', ');
  }

  /** Runs `text` (built with this object's placeholders) on `db`, without Kysely's plugins (rows keep their SQL names). */
  async run<R>(db: Db, text: string): Promise<R[]> {
    const query = CompiledQuery.raw(text, this.values);
    if (this.isUrgent) urgent(query);
    const r = await db.withoutPlugins().executeQuery<R>(query);
    return r.rows;
  }

  private isUrgent = false;

  /** The statement takes a lock every deletion passes one at a time: its result comes back at once (prepared-client.ts urgent). */
  urgent(): this {
    this.isUrgent = true;
    return this;
  }

  /** `run` with each row's top-level keys in camelCase, as Kysely's CamelCasePlugin gives them to the rest of the code. */
  async runCamel<R>(db: Db, text: string): Promise<R[]> {
    const rows = await this.run<Record<string, unknown>>(db, text);
    return rows.map((row) => {
      const out: Record<string, unknown> = {};
      for (const k in row) out[toCamel(k)] = row[k];
      return out as R;
    });
  }
}

/** A quoted identifier (the names come from declarations, never from a request; quoted all the same). */
export const ident = (name: string): string => `"${name.replaceAll('"', '""')}"`;
