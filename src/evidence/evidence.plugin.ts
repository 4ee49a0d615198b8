import * as m0012 from '../db/migrations/0012-console.ts';
import type { DomainPlugin } from '../plugin/registry.ts';
import { receiptKeysCli, receiptVerifyCli } from './evidence.cli.ts';
import { registerEvidenceRoutes } from './evidence.routes.ts';

/**
 * Evidence an operator can hand over: deletion receipts listed and signed (Ed25519 over RFC 8785
 * JSON), the public receipt keys, and the CLI to rotate keys and verify receipts offline.
 * Migration 0012 (receipt-signing keys; also the webhook response excerpts of delivery health).
 */
export const evidencePlugin: DomainPlugin = {
  name: 'evidence',
  migrations: { '0012-console': m0012 },
  cli: [receiptVerifyCli, receiptKeysCli],
  plug(ctx, r) {
    r.routes((app) => registerEvidenceRoutes(app, ctx, r.port('deletion')));
  },
};
