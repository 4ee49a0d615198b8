import { CASCADE } from './cascade.ts';
import { type Action, type Column, DATA_MAP, toCamel } from './data-map.ts';

/**
 * The redaction policy: for every personal field of a customer's records ("entity.field"), what
 * a deletion does to it. The defaults come from THE data map; the operator's overrides (settings)
 * are applied on top. Activity entries and stored responses are not fields of this policy: they
 * are always purged (see redaction.ts).
 */
export interface PolicyField {
  /** "customer.email", "address.phone", "customer.profilePhoto" */
  key: string;
  sqlTable: string;
  sqlColumn: string;
  column: Column;
  defaultAction: Action;
  /** Actions an operator may choose for this field. */
  allowed: Action[];
}

export type Policy = Record<string, Action>;

/**
 * Personal columns declared NOT NULL in the schema: they cannot be nullified. A test checks this
 * list against information_schema. (customers.metadata is NOT NULL too: nullify empties it to {}.)
 */
export const NOT_NULL_PERSONAL = new Set(['social_identities.external_id']);

function allowedActions(sqlTable: string, sqlColumn: string, col: Column): Action[] {
  if (col.category === 'file') return ['delete', 'keep'];
  const out: Action[] = [];
  if (!NOT_NULL_PERSONAL.has(`${sqlTable}.${sqlColumn}`)) out.push('nullify');
  if (col.mask) out.push('mask');
  out.push('keep');
  return out;
}

/** Every policy field, in data-map order: personal columns of the customer and of its soft-deleted records. */
export const POLICY_FIELDS: PolicyField[] = Object.entries(DATA_MAP)
  .filter(([table]) => CASCADE[table] === 'soft_delete')
  .flatMap(([sqlTable, t]) => Object.entries(t.columns)
    .filter(([, col]) => col.personal)
    .map(([sqlColumn, col]) => ({
      key: `${t.entity}.${col.field ?? toCamel(sqlColumn)}`,
      sqlTable, sqlColumn, column: col, defaultAction: col.action,
      allowed: allowedActions(sqlTable, sqlColumn, col),
    })));

export const POLICY_FIELD_BY_KEY = new Map(POLICY_FIELDS.map((f) => [f.key, f]));

export function defaultPolicy(): Policy {
  return Object.fromEntries(POLICY_FIELDS.map((f) => [f.key, f.defaultAction]));
}

/** Default actions with the stored overrides applied (unknown or no-longer-valid overrides are ignored). */
export function effectivePolicy(overrides: Record<string, string>): Policy {
  const policy = defaultPolicy();
  for (const [key, action] of Object.entries(overrides)) {
    const f = POLICY_FIELD_BY_KEY.get(key);
    if (f && f.allowed.includes(action as Action)) policy[key] = action as Action;
  }
  return policy;
}
