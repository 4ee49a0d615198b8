import type { Logger } from 'pino';
import type { Clock } from './clock.ts';
import type { Config } from './config.ts';
import type { FieldCrypto } from './crypto/field-crypto.ts';
import type { Db, DbKind } from './db/database.ts';
import type { Metrics } from './http/metrics.ts';
import type { Secrets } from './secrets.ts';
import type { BlobStore } from './storage/stored-files.repo.ts';

/** What every service is built from: passed in, never imported as a global. */
export interface Ctx {
  db: Db;
  dbKind: DbKind;
  clock: Clock;
  config: Config;
  secrets: Secrets;
  blobs: BlobStore;
  /** Personal data at rest: per-customer keys, the keyring, the blind index (src/crypto). */
  crypto: FieldCrypto;
  log: Logger;
  metrics: Metrics;
}
