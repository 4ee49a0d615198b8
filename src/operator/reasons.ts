/**
 * Reasons an operator picks for a consequential action. The code is audited (no personal data);
 * an optional free-text note goes to the customer's activity log instead, erasable with them.
 */
export const LEGAL_HOLD_REASONS = ['litigation', 'regulator_request', 'fraud_investigation', 'customer_dispute', 'matter_closed', 'placed_in_error', 'other'] as const;
export const LICENSE_CANCEL_REASONS = ['customer_request', 'non_payment', 'contract_ended', 'fraud', 'duplicate', 'other'] as const;
export const ENDPOINT_DISABLE_REASONS = ['endpoint_failing', 'endpoint_compromised', 'partner_request', 'maintenance', 'other'] as const;
export const NOTE_MAX = 500;
