import type { Timestamp } from '../db/schema.ts';

export interface KeyEpochsTable {
  id: string;
  seq: number;
  createdAt: Timestamp;
  retiredAt: Timestamp | null;
  outOfUseSince: Timestamp | null;
  destroyedAt: Timestamp | null;
}

export interface CustomerKeysTable {
  customerId: string;
  epochId: string;
  wrapped: Buffer;
  createdAt: Timestamp;
  wrappedAt: Timestamp;
}

export interface CryptoStateTable {
  id: number;
  keyringId: string | null;
  migrationCursor: string | null;
  migrationDoneAt: Timestamp | null;
}

/** Kysely types of the tables of the crypto domain (joined into Database in src/db/schema.ts). */
export interface CryptoTables {
  keyEpochs: KeyEpochsTable;
  customerKeys: CustomerKeysTable;
  cryptoState: CryptoStateTable;
}
