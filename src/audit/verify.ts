import type { Ctx } from '../context.ts';
import { deletionReceiptsWithEvents, eventHashesAt, verifyChain } from './audit.repo.ts';
import { anchorsOf, checkpointAudit, readCheckpoints } from './checkpoints.ts';

export type AuditProblemKind = 'chain_broken' | 'truncated' | 'rewritten' | 'checkpoint_invalid' | 'receipt_event_missing' | 'receipt_mismatch';
export interface AuditProblem { kind: AuditProblemKind; seq: number | null; customerId: string | null; detail: string }
export interface RestoreFork { backupId: string; at: string; replacedSeq: number; restoredSeq: number; eventsLost: number }

export interface AuditVerification {
  valid: boolean;
  count: number;
  firstInvalidSeq: number | null;
  head: { seq: number; hash: string } | null;
  /** The last checkpoint outside the database the chain was checked against. */
  checkpointSeq: number | null;
  problems: AuditProblem[];
  /** Documented restores: events after `restoredSeq` up to `replacedSeq` were lost to them, not truncated. */
  restores: RestoreFork[];
}

/**
 * Verifies the chain (keyed hashes), its head against the signed checkpoints outside the
 * database (never behind the last, never different at a checkpointed seq), and every deletion
 * receipt against the event it names. A documented restore is reported in `restores`, not as a
 * problem. Checkpoints the current head first (so verify also anchors what it has checked).
 */
export async function verifyAudit(ctx: Pick<Ctx, 'db' | 'config' | 'secrets' | 'clock'>): Promise<AuditVerification> {
  const key = ctx.secrets.auditKey;
  const chain = await verifyChain(ctx.db, key);
  const problems: AuditProblem[] = [];
  if (!chain.valid) problems.push({ kind: 'chain_broken', seq: chain.firstInvalidSeq, customerId: null, detail: 'an event was edited, inserted or removed here' });
  const file = readCheckpoints(ctx.config, key);
  if (file.badLines > 0) problems.push({ kind: 'checkpoint_invalid', seq: null, customerId: null, detail: `${file.badLines} checkpoint line(s) fail their signature` });
  const { anchors, forks } = anchorsOf(file.lines);
  const lastSeq = anchors.size ? Math.max(...anchors.keys()) : null;
  const headSeq = chain.head?.seq ?? 0;
  if (lastSeq !== null && headSeq < lastSeq) {
    problems.push({ kind: 'truncated', seq: lastSeq, customerId: null,
      detail: `the chain ends at ${headSeq} but was checkpointed at ${lastSeq}: ${lastSeq - headSeq} event(s) removed` });
  }
  if (anchors.size) {
    const seqs = [...anchors.keys()].filter((s) => s <= headSeq);
    const found = await eventHashesAt(ctx.db, seqs);
    for (const seq of seqs) {
      if (found.get(seq) !== anchors.get(seq)) {
        problems.push({ kind: 'rewritten', seq, customerId: null, detail: `event ${seq} differs from its checkpoint` });
      }
    }
  }
  const receipts = await deletionReceiptsWithEvents(ctx.db);
  for (const r of receipts) {
    if (r.eventHash === null || r.eventSeq === null) {
      problems.push({ kind: 'receipt_event_missing', seq: null, customerId: r.customerId, detail: 'the receipt names an audit event that is not in the chain' });
    } else if (r.eventHash !== r.auditHash || r.eventType !== 'customer.deleted' || r.eventSubject !== r.customerId) {
      problems.push({ kind: 'receipt_mismatch', seq: Number(r.eventSeq), customerId: r.customerId, detail: 'the receipt does not match the audit event it names' });
    }
  }
  // Anchor what was just checked (only ever ahead of the last checkpoint, see checkpointAudit).
  if (problems.length === 0) await checkpointAudit({ db: ctx.db, config: ctx.config, key, now: () => ctx.clock.now() });
  return {
    valid: problems.length === 0, count: chain.count, firstInvalidSeq: chain.firstInvalidSeq ?? problems.find((p) => p.seq !== null)?.seq ?? null,
    head: chain.head, checkpointSeq: lastSeq, problems,
    restores: forks.map((f) => ({ backupId: f.backupId, at: f.at, replacedSeq: f.replacedSeq, restoredSeq: f.restoredSeq,
      eventsLost: Math.max(0, f.replacedSeq - f.restoredSeq) })),
  };
}
