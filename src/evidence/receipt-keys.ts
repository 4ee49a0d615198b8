import crypto from 'node:crypto';
import type { Db } from '../db/database.ts';
import { appendAudit } from '../audit/audit.repo.ts';
import { canonicalJson } from '../audit/canonical-json.ts';
import * as repo from './evidence.repo.ts';

export const ALGORITHM = 'Ed25519';

export interface PublicReceiptKey { keyId: string; algorithm: string; publicKey: string; createdAt: Date; retiredAt: Date | null }

function seal(sealKey: Buffer, keyId: string, plain: Buffer): Buffer {
  const iv = crypto.randomBytes(12);
  const c = crypto.createCipheriv('aes-256-gcm', sealKey, iv);
  c.setAAD(Buffer.from(`receipt-key:${keyId}`));
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), body]);
}

function unseal(sealKey: Buffer, keyId: string, sealed: Buffer): Buffer {
  const d = crypto.createDecipheriv('aes-256-gcm', sealKey, sealed.subarray(0, 12));
  d.setAAD(Buffer.from(`receipt-key:${keyId}`));
  d.setAuthTag(sealed.subarray(12, 28));
  return Buffer.concat([d.update(sealed.subarray(28)), d.final()]);
}

/** The raw 32-byte Ed25519 public key (base64url) of a KeyObject. */
export function rawPublicKey(key: crypto.KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  return String(jwk.x);
}

/** A KeyObject from a raw 32-byte Ed25519 public key in base64url (what GET /v1/receipt-keys publishes). */
export function publicKeyFromRaw(raw: string): crypto.KeyObject {
  return crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw }, format: 'jwk' });
}

async function insertNewKey(db: Db, sealKey: Buffer, at: Date) {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const raw = rawPublicKey(publicKey);
  const keyId = `rk_${crypto.createHash('sha256').update(Buffer.from(raw, 'base64url')).digest('hex').slice(0, 16)}`;
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  const inserted = await repo.insertSigningKey(db, { keyId, publicKey: raw, sealedPrivateKey: seal(sealKey, keyId, der), at });
  return { keyId, inserted };
}

/** The current signing key, created on first use (two instances racing: one insert wins, both use it). */
export async function currentSigningKey(db: Db, sealKey: Buffer, at: Date): Promise<{ keyId: string; privateKey: crypto.KeyObject }> {
  for (let i = 0; i < 2; i++) {
    const row = await repo.findCurrentSigningKey(db);
    if (row) {
      const der = unseal(sealKey, row.keyId, Buffer.from(row.sealedPrivateKey));
      return { keyId: row.keyId, privateKey: crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }) };
    }
    await insertNewKey(db, sealKey, at);
  }
  throw new Error('no receipt-signing key could be created');
}

/** Every public key ever used, oldest first. */
export async function listPublicKeys(db: Db): Promise<PublicReceiptKey[]> {
  return repo.listPublicKeys(db);
}

/**
 * Retires the current key and creates a new one, in one transaction, audited. The master key is
 * untouched; old public keys stay published so receipts signed before still verify.
 */
export async function rotateSigningKey(db: Db, sealKey: Buffer, at: Date, actorKeyId: string | null) {
  return db.transaction().execute(async (trx) => {
    const retired = await repo.retireCurrentKeys(trx, at);
    const created = await insertNewKey(trx, sealKey, at);
    await appendAudit(trx, { type: 'receipt_key.rotated', actorKeyId, subjectType: 'receipt_key', subjectId: null, at,
      data: { keyId: created.keyId, retired } });
    return { keyId: created.keyId, retired };
  });
}

/** A receipt signed: its RFC 8785 canonical JSON text and the Ed25519 signature over those bytes (base64url). */
export function signReceipt(receipt: unknown, key: { keyId: string; privateKey: crypto.KeyObject }) {
  const text = canonicalJson(receipt);
  const signature = crypto.sign(null, Buffer.from(text, 'utf8'), key.privateKey).toString('base64url');
  return { receipt: text, signature, keyId: key.keyId, algorithm: ALGORITHM };
}

/** Verifies a signed receipt document against a raw base64url public key. */
export function verifySignedReceipt(doc: { receipt: string; signature: string }, publicKeyRaw: string): boolean {
  try {
    return crypto.verify(null, Buffer.from(doc.receipt, 'utf8'), publicKeyFromRaw(publicKeyRaw), Buffer.from(doc.signature, 'base64url'));
  } catch { return false; }
}
