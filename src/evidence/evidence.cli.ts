import fs from 'node:fs';
import { parseArgs } from 'node:util';
import type { CliCommand } from '../plugin/registry.ts';
import { rotateSigningKey, verifySignedReceipt } from './receipt-keys.ts';

export interface CliIo { out(line: string): void; err(line: string): void }
const consoleIo: CliIo = { out: (l) => console.log(l), err: (l) => console.error(l) };

/**
 * `lethe receipt verify <file> (--public-key <base64url> | --keys <receipt-keys.json>)`: offline,
 * no database, no server. The file is what GET /v1/deletions/{customerId}/signed returned.
 */
export function verifyCommand(argv: string[], io: CliIo = consoleIo): number {
  let parsed;
  try {
    // A base64url key may start with "-": take the word after --public-key/--keys as its value whatever it looks like.
    const args: string[] = [];
    const rest = argv.slice(2);
    for (let i = 0; i < rest.length; i++) {
      const a = rest[i]!;
      if ((a === '--public-key' || a === '--keys') && i + 1 < rest.length) args.push(`${a}=${rest[++i]!}`);
      else args.push(a);
    }
    parsed = parseArgs({ args, allowPositionals: true,
      options: { 'public-key': { type: 'string' }, keys: { type: 'string' } } });
  } catch (error) { io.err(`lethe receipt verify: ${(error as Error).message}`); return 2; }
  const file = parsed.positionals[0];
  if (!file || (!parsed.values['public-key'] && !parsed.values.keys)) {
    io.err('usage: lethe receipt verify <signed-receipt.json> (--public-key <base64url> | --keys <receipt-keys.json>)');
    return 2;
  }
  let doc: { receipt?: unknown; signature?: unknown; keyId?: unknown; algorithm?: unknown };
  try { doc = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof doc; } catch (error) {
    io.err(`lethe receipt verify: cannot read ${file}: ${(error as Error).message}`); return 2;
  }
  if (typeof doc.receipt !== 'string' || typeof doc.signature !== 'string' || doc.algorithm !== 'Ed25519') {
    io.err('lethe receipt verify: not a signed receipt ({receipt, signature, keyId, algorithm: "Ed25519"})'); return 2;
  }
  let publicKey = parsed.values['public-key'];
  if (!publicKey) {
    try {
      const keys = (JSON.parse(fs.readFileSync(parsed.values.keys!, 'utf8')) as { keys: Array<{ keyId: string; publicKey: string }> }).keys;
      publicKey = keys.find((k) => k.keyId === doc.keyId)?.publicKey;
    } catch (error) { io.err(`lethe receipt verify: cannot read the keys file: ${(error as Error).message}`); return 2; }
    if (!publicKey) { io.err(`lethe receipt verify: no public key ${String(doc.keyId)} in the keys file`); return 1; }
  }
  if (!verifySignedReceipt({ receipt: doc.receipt, signature: doc.signature }, publicKey)) {
    io.err('INVALID: the signature does not match this receipt and key');
    return 1;
  }
  const receipt = JSON.parse(doc.receipt) as { customerId?: string; deletedAt?: string };
  io.out(`valid: customer ${receipt.customerId} deleted ${receipt.deletedAt}, signed by ${String(doc.keyId)}`);
  return 0;
}

/** `lethe receipt verify …`: offline, no database. */
export const receiptVerifyCli: CliCommand = {
  usage: `${'lethe receipt verify <file> --public-key <k>'.padEnd(41)} verify a signed deletion receipt offline`,
  matches: (argv) => argv[0] === 'receipt' && argv[1] === 'verify',
  run: async (argv) => verifyCommand(argv),
};

/** `lethe receipt-keys rotate`: a new signing key; the old public keys stay published. */
export const receiptKeysCli: CliCommand = {
  usage: `${'lethe receipt-keys rotate'.padEnd(41)} new receipt-signing key (old public keys stay published)`,
  matches: (argv) => argv[0] === 'receipt-keys',
  async run(argv, config) {
    if (argv[1] !== 'rotate') { console.error('usage: lethe receipt-keys rotate'); return 2; }
    // Loaded on use (the runtime plugs every domain, this one included).
    const { startRuntime } = await import('../runtime.ts');
    const runtime = await startRuntime(config);
    try {
      const r = await rotateSigningKey(runtime.ctx.db, runtime.ctx.secrets.receiptSealKey, runtime.ctx.clock.now(), null);
      console.log(r.keyId);
      console.error(`new receipt-signing key ${r.keyId}${r.retired.length ? `; retired ${r.retired.join(', ')} (still published)` : ''}`);
      return 0;
    } finally { await runtime.close(); }
  },
};
