import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { keyObject } from './crypto/key-object.ts';

/**
 * The server master key and the purpose-bound keys derived from it. The master key comes from
 * LETHE_MASTER_KEY or is generated once into the data directory; it is never a constant in code.
 */
export interface Secrets {
  /** HMAC key for pseudonymous references (transactions of deleted customers). */
  pseudonymKey: Buffer;
  /** HMAC key for export pseudonyms. */
  exportKey: Buffer;
  /** AES-256-GCM key for sealed backups. */
  backupKey: Buffer;
  /** Key for masking values so masked output is not derivable from the original. */
  maskKey: Buffer;
  /** HMAC key for API key hashes: a stolen key table cannot be tested against guesses offline. */
  apiKeyHashKey: Buffer;
  /** HMAC key of the audit chain and of its checkpoints outside the database. */
  auditKey: Buffer;
  /** AES-256-GCM key for secrets stored in the database (webhook secrets), see src/crypto/envelope.ts. */
  storedSecretsKey: Buffer;
  /** AES-256-GCM key sealing the receipt-signing private keys (src/evidence/receipt-keys.ts). */
  receiptSealKey: Buffer;
  /** Seals key-epoch keys in the keyring (crypto-shredding). */
  keyringKey: Buffer;
  /** HMAC key of the e-mail blind index. */
  blindIndexKey: Buffer;
  /** HMAC key of idempotency_keys.body_hash (a request body often holds an e-mail: no unkeyed hash of it is kept). */
  idempotencyHashKey: Buffer;
  /** Fingerprint of the master key: lets a backup say which key sealed it without revealing it. */
  fingerprint: string;
}

export function deriveSecrets(master: Buffer): Secrets {
  const derive = (purpose: string) =>
    Buffer.from(crypto.hkdfSync('sha256', master, Buffer.from('lethe'), Buffer.from(purpose), 32));
  return {
    pseudonymKey: derive('pseudonym/v1'),
    exportKey: derive('export/v1'),
    backupKey: derive('backup/v1'),
    maskKey: derive('mask/v1'),
    apiKeyHashKey: derive('api-key-hash/v1'),
    auditKey: derive('audit-chain/v1'),
    storedSecretsKey: derive('stored-secrets/v1'),
    receiptSealKey: derive('receipt-key-seal/v1'),
    keyringKey: derive('keyring/v1'),
    blindIndexKey: derive('blind-index/v1'),
    idempotencyHashKey: derive('idempotency-hash/v1'),
    fingerprint: crypto.createHash('sha256').update(derive('fingerprint/v1')).digest('hex').slice(0, 16),
  };
}

export function loadMasterKey(masterKeyBase64: string | undefined, dataDir: string): Buffer {
  if (masterKeyBase64) return Buffer.from(masterKeyBase64, 'base64');
  const file = path.join(dataDir, 'master.key');
  try {
    return Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const key = crypto.randomBytes(32);
  // 'wx' fails if another process created it first; then read theirs.
  try {
    fs.writeFileSync(file, key.toString('base64') + '\n', { flag: 'wx', mode: 0o600 });
    return key;
  } catch {
    return Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  }
}

// The key's KeyObject is made once (src/crypto/key-object.ts): an export computes several per deleted row.
export function hmacHex(key: Buffer, value: string): string {
  return crypto.createHmac('sha256', keyObject(key)).update(value).digest('hex');
}
