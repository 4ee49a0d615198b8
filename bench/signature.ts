// What a deletion left behind for one customer, as a comparable shape: for every table that
// refers to the customer (found through information_schema, so tables added later are included),
// each row's set of non-null columns and its status. Comparing the shape left by the server with
// the one left by the floor shows when the floor no longer does the same work.
import type { Exec } from './fixtures.ts';

export async function deletionShape(exec: Exec, customerId: string, ref: string): Promise<Record<string, string[]>> {
  const tables = await exec(`
    SELECT table_name, string_agg(column_name, ',') AS columns FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name <> 'bench_feed'
      AND column_name IN ('customer_id', 'customer_ref', 'subject_id', 'status', 'payload')
    GROUP BY table_name ORDER BY table_name`);
  const shape: Record<string, string[]> = {};
  const cust = await exec(`SELECT * FROM customers WHERE id = '${customerId}'`);
  shape.customers = cust.rows.map(rowShape);
  for (const t of tables.rows as Array<{ table_name: string; columns: string }>) {
    const cols = t.columns.split(',');
    const where: string[] = [];
    if (cols.includes('customer_id')) where.push(`customer_id = '${customerId}'`);
    if (cols.includes('customer_ref')) where.push(`customer_ref = '${ref}'`);
    if (cols.includes('subject_id')) where.push(`subject_id = '${customerId}'`);
    // Evidence and messages that name the customer only inside their JSON.
    if (t.table_name === 'audit_events') where.push(`data::text LIKE '%${customerId}%'`);
    if (t.table_name === 'webhook_outbox') where.push(`payload::text LIKE '%${customerId}%'`);
    if (where.length === 0) continue;
    const r = await exec(`SELECT * FROM ${t.table_name} WHERE ${where.join(' OR ')}`);
    shape[t.table_name] = r.rows.map(rowShape).sort();
  }
  return shape;
}

function rowShape(row: Record<string, unknown>): string {
  const nonNull = Object.keys(row).filter((k) => row[k] !== null).sort();
  const tag = ['status', 'type'].filter((k) => typeof row[k] === 'string').map((k) => `${k}=${String(row[k])}`);
  return [...tag, nonNull.join(',')].join(' ');
}

/** Human-readable differences between two shapes (empty when they match). */
export function diffShapes(a: Record<string, string[]>, b: Record<string, string[]>): string[] {
  const out: string[] = [];
  for (const table of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = JSON.stringify(a[table] ?? []);
    const y = JSON.stringify(b[table] ?? []);
    if (x !== y) out.push(`${table}: server ${(a[table] ?? []).length} rows vs floor ${(b[table] ?? []).length} rows${x.length < 400 ? ` (${x} vs ${y})` : ''}`);
  }
  return out;
}
