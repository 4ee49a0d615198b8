import type { Application, DeletionCase } from '../api.ts';
import { nameOf } from '../apps.ts';
import { DeliveryState, useCaseHealth } from '../delivery.tsx';
import { ShortId } from '../format.tsx';
import { Link } from '../router.tsx';
import { StatusBadge, Table } from '../ui.tsx';

export function caseLink(c: DeletionCase): string | null {
  return c.id ? `/cases/${c.id}?subscriptionId=${c.subscriptionId}&applicationId=${c.applicationId}` : null;
}

export function CasesTable({ rows, apps, caption, empty }: { rows: DeletionCase[]; apps: Application[] | null; caption: string; empty?: string }) {
  const health = useCaseHealth(rows.map((r) => r.id).filter((x): x is string => typeof x === 'string'));
  return (
    <Table<DeletionCase> caption={caption} rows={rows} empty={empty ?? 'No deletion cases.'} className="cards-on-phone"
      columns={[
        { key: 'status', label: 'State', render: (c) => {
          const link = caseLink(c);
          const badge = <StatusBadge value={c.status} />;
          return link ? <Link to={link}>{badge} Open case</Link> : badge;
        } },
        { key: 'subscriptionId', label: 'Customer', render: (c) => <Link to={`/cases?subscriptionId=${c.subscriptionId}`}><ShortId id={c.subscriptionId} /></Link> },
        { key: 'applicationId', label: 'Application', render: (c) => <Link to={`/applications/${c.applicationId}`}>{nameOf(apps, c.applicationId)}</Link> },
        { key: 'delivery', label: 'Delivery', render: (c) => (health.error ? <span className="muted">unknown</span>
          : <DeliveryState health={c.id ? health.data?.get(c.id) : undefined} lastNotifiedDay={c.lastNotifiedDay} />) },
        { key: 'reason', label: 'Reason' },
        { key: 'graceEndsAt', label: 'Grace ends' },
        { key: 'requiredSince', label: 'Required since' },
        { key: 'confirmedAt', label: 'Confirmed' },
        { key: 'overdue', label: 'Overdue', render: (c) => (c.overdue ? <StatusBadge value="overdue" /> : <span className="muted">no</span>) },
      ]} />
  );
}
