import type { Generated } from 'kysely';
import type { Timestamp } from '../db/schema.ts';

/** Ed25519 receipt-signing keys; the private half sealed under a key derived from the master key. */
export interface ReceiptSigningKeysTable {
  keyId: string;
  algorithm: Generated<string>;
  /** base64url of the raw 32-byte public key. */
  publicKey: string;
  /** iv(12) | tag(16) | AES-256-GCM(pkcs8 DER), associated data: the key id. */
  sealedPrivateKey: Buffer;
  createdAt: Timestamp;
  /** Set when a rotation replaced it; the public key stays published. */
  retiredAt: Timestamp | null;
}

export interface EvidenceTables {
  receiptSigningKeys: ReceiptSigningKeysTable;
}
