// The deletion floor on the embedded database: the statements bench/floor.ts gives pgbench, run
// on PGlite in-process (no HTTP, no server), one customer after another. pgbench's script
// language is small: SQL commands (ending with ";" at the end of a line, or followed by a
// "\gset" line that stores the result row's columns as variables) and ":name" variables. This
// runner executes it the same way: each command one PGlite query, the variables passed as
// parameters ($1…, as text, cast by the statement as in pgbench), "\gset" results kept.
import type { PGlite } from '@electric-sql/pglite';

interface Command { sql: string; names: string[]; gset: boolean }

/** The pgbench script as commands with their variables turned into parameters. */
export function parseScript(script: string): Command[] {
  const commands: Command[] = [];
  let buffer: string[] = [];
  const flush = (gset: boolean) => {
    const text = buffer.join('\n').trim();
    buffer = [];
    if (text === '') return;
    const names: string[] = [];
    // A variable is ":name" not preceded by ":" (so "::uuid" casts are left alone), as in pgbench.
    const sql = text.replace(/(?<!:):([A-Za-z_][A-Za-z0-9_]*)/g, (_m, name: string) => {
      let i = names.indexOf(name);
      if (i === -1) { names.push(name); i = names.length - 1; }
      return `$${i + 1}`;
    }).replace(/;\s*$/, '');
    commands.push({ sql, names, gset });
  };
  for (const line of script.split('\n')) {
    const t = line.trim();
    if (t === '\\gset') { flush(true); continue; }
    if (t.startsWith('\\')) throw new Error(`floor-embedded: unsupported meta-command ${t}`);
    buffer.push(line);
    if (t.endsWith(';') && !t.startsWith('--')) flush(false);
  }
  flush(false);
  return commands;
}

/** A value read by \gset, as pgbench would hold it: the column's text. */
function asText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/**
 * Runs the script `times` times in a row on `pglite` (one deletion each) with the given variables
 * (pgbench's -D). Returns the elapsed time in ms and each run's latency.
 */
export async function runScriptEmbedded(pglite: PGlite, script: string, times: number, defines: Record<string, string>): Promise<{ ms: number; latencies: number[] }> {
  const commands = parseScript(script);
  const latencies: number[] = [];
  const t0 = performance.now();
  for (let k = 0; k < times; k++) {
    const s = performance.now();
    const vars = new Map<string, string | null>(Object.entries(defines));
    try {
      for (const c of commands) {
        const params = c.names.map((n) => {
          if (!vars.has(n)) throw new Error(`floor-embedded: variable :${n} is not set`);
          return vars.get(n)!;
        });
        const r = await pglite.query<Record<string, unknown>>(c.sql, params);
        if (c.gset) {
          const row = r.rows[0];
          if (!row) throw new Error(`floor-embedded: \\gset query returned no row: ${c.sql.slice(0, 120)}`);
          for (const [name, value] of Object.entries(row)) vars.set(name, asText(value));
        }
      }
    } catch (error) {
      await pglite.query('ROLLBACK').catch(() => {});
      throw error;
    }
    latencies.push(performance.now() - s);
  }
  return { ms: performance.now() - t0, latencies };
}
