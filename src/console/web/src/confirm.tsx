import { useEffect, useId, useRef, useState, type ReactNode } from 'react';
import { ErrorMessage, useAction } from './ui.tsx';

/** A reason an operator chooses: the code is audited, the label is what they read. */
export interface Reason { code: string; label: string }

export const LEGAL_HOLD_ON_REASONS: Reason[] = [
  { code: 'litigation', label: 'Litigation or a legal claim' },
  { code: 'regulator_request', label: 'A regulator or authority asked' },
  { code: 'fraud_investigation', label: 'Fraud investigation' },
  { code: 'customer_dispute', label: 'Dispute with the customer' },
  { code: 'other', label: 'Other (explain in the note)' },
];
export const LEGAL_HOLD_OFF_REASONS: Reason[] = [
  { code: 'matter_closed', label: 'The matter is closed' },
  { code: 'placed_in_error', label: 'Placed in error' },
  { code: 'other', label: 'Other (explain in the note)' },
];
export const LICENSE_CANCEL_REASONS: Reason[] = [
  { code: 'customer_request', label: 'The customer asked' },
  { code: 'non_payment', label: 'Not paid' },
  { code: 'contract_ended', label: 'The contract ended' },
  { code: 'fraud', label: 'Fraud' },
  { code: 'duplicate', label: 'Duplicate license' },
  { code: 'other', label: 'Other (explain in the note)' },
];
export const ENDPOINT_DISABLE_REASONS: Reason[] = [
  { code: 'endpoint_failing', label: 'The endpoint keeps failing' },
  { code: 'endpoint_compromised', label: 'The endpoint or its secret is compromised' },
  { code: 'partner_request', label: 'The partner asked' },
  { code: 'maintenance', label: 'Partner maintenance' },
  { code: 'other', label: 'Other' },
];

export interface ConfirmRequest {
  title: string;
  /** What will happen, in plain words. */
  body: ReactNode;
  /** The confirming button's visible label (also its accessible name). */
  confirmLabel: string;
  danger?: boolean;
  /** Reasons to choose from; when given, one must be chosen. */
  reasons?: Reason[];
  /** Offer a free-text note (goes to the customer's activity log, never the audit log). */
  note?: boolean;
  run: (choice: { reason?: string; note?: string }) => Promise<void>;
}

/**
 * The one confirmation dialog for consequential actions: says what happens, asks for a reason
 * from a list when the action is audited, optionally a note; keyboard only works (native
 * <dialog>: focus moves in, Tab stays in, Escape cancels, focus returns to the opener).
 */
export function ConfirmDialog({ request, onClose }: { request: ConfirmRequest | null; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const opener = useRef<Element | null>(null);
  const [reason, setReason] = useState('');
  const [note, setNote] = useState('');
  const action = useAction();
  const id = useId();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (request && !d.open) {
      opener.current = document.activeElement;
      setReason(''); setNote(''); action.clear();
      d.showModal();
    }
    if (!request && d.open) d.close();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [request]);
  const close = () => {
    onClose();
    const o = opener.current;
    if (o instanceof HTMLElement && o.isConnected) setTimeout(() => o.focus(), 0);
  };
  const needsReason = Boolean(request?.reasons?.length);
  const ready = !needsReason || reason !== '';
  return (
    <dialog ref={ref} className="dialog confirm" aria-labelledby={`${id}-t`} aria-describedby={`${id}-b`}
      onClose={(e) => { if (e.target === e.currentTarget) close(); }}>
      {request && (
        <form method="dialog" className="dialog-body" onSubmit={(e) => {
          e.preventDefault();
          if (!ready) return;
          void action.run(async () => {
            await request.run({ ...(reason ? { reason } : {}), ...(note.trim() ? { note: note.trim() } : {}) });
            ref.current?.close();
          });
        }}>
          <h2 id={`${id}-t`}>{request.title}</h2>
          <div id={`${id}-b`}>{request.body}</div>
          {needsReason && (
            <div className="field">
              <label htmlFor={`${id}-r`}>Reason <span className="muted small">(recorded in the audit log)</span></label>
              <select id={`${id}-r`} value={reason} onChange={(e) => setReason(e.target.value)} required autoFocus>
                <option value="">Choose a reason…</option>
                {request.reasons!.map((r) => <option key={r.code} value={r.code}>{r.label}</option>)}
              </select>
            </div>
          )}
          {request.note && (
            <div className="field">
              <label htmlFor={`${id}-n`}>Note <span className="muted small">(optional; kept in the customer's activity log and erased with the customer, never in the audit log)</span></label>
              <textarea id={`${id}-n`} rows={3} maxLength={500} value={note} onChange={(e) => setNote(e.target.value)} />
            </div>
          )}
          <ErrorMessage error={action.error} />
          <div className="actions">
            <button type="submit" className={request.danger ? 'danger' : ''} disabled={!ready || action.busy} autoFocus={!needsReason}>
              {action.busy ? 'Working…' : request.confirmLabel}
            </button>
            <button type="button" className="secondary" onClick={() => ref.current?.close()}>Cancel</button>
          </div>
        </form>
      )}
    </dialog>
  );
}

/** State for one ConfirmDialog on a page: `ask(request)` opens it. */
export function useConfirm() {
  const [request, setRequest] = useState<ConfirmRequest | null>(null);
  return { ask: setRequest, dialog: <ConfirmDialog request={request} onClose={() => setRequest(null)} /> };
}
