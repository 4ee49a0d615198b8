import { type Kysely, sql } from 'kysely';

/**
 * Runs a script of DDL statements one by one: PGlite's driver speaks the extended protocol,
 * which takes a single statement per query. Statements end with `;` at the end of a line.
 */
export async function runDdl(db: Kysely<unknown>, script: string): Promise<void> {
  const withoutComments = script.replace(/^\s*--.*$/gm, '');
  for (const statement of withoutComments.split(/;\s*$/m)) {
    if (statement.trim()) await sql.raw(statement).execute(db);
  }
}
