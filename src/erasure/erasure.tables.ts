/** Kysely types of the tables this domain adds (joined into Database in src/db/schema.ts). */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface ErasureTables {}
