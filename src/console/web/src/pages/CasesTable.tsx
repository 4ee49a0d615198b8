import type { Application, DeletionCase } from '../api.ts';
import { nameOf } from '../apps.ts';
import { Link } from '../router.tsx';
import { StatusBadge, Table } from '../ui.tsx';

export function caseLink(c: DeletionCase): string | null {
  return c.id ? `/cases/${c.id}?subscriptionId=${c.subscriptionId}&applicationId=${c.applicationId}` : null;
}

export function CasesTable({ rows, apps, caption, empty }: { rows: DeletionCase[]; apps: Application[] | null; caption: string; empty?: string }) {
  return (
    <Table<DeletionCase> caption={caption} rows={rows} empty={empty ?? 'No deletion cases.'}
      columns={[
        { key: 'status', label: 'State', render: (c) => {
          const link = caseLink(c);
          const badge = <StatusBadge value={c.status} />;
          return link ? <Link to={link} aria-label={`Case ${c.status} for customer ${c.subscriptionId} at ${nameOf(apps, c.applicationId)}: open`}>{badge} open</Link> : badge;
        } },
        { key: 'subscriptionId', label: 'Customer', render: (c) => <Link to={`/cases?subscriptionId=${c.subscriptionId}`}><code>{c.subscriptionId}</code></Link> },
        { key: 'applicationId', label: 'Application', render: (c) => <Link to={`/applications/${c.applicationId}`}>{nameOf(apps, c.applicationId)}</Link> },
        { key: 'reason', label: 'Reason' },
        { key: 'graceEndsAt', label: 'Grace ends' },
        { key: 'requiredSince', label: 'Required since' },
        { key: 'lastNotifiedDay', label: 'Last notified' },
        { key: 'confirmedAt', label: 'Confirmed' },
        { key: 'overdue', label: 'Overdue', render: (c) => (c.overdue ? <StatusBadge value="overdue" /> : <span className="muted">no</span>) },
      ]} />
  );
}
