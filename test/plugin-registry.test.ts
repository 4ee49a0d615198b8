import { describe, expect, it } from 'vitest';
import type { Ctx } from '../src/context.ts';
import { DOMAINS, MIGRATIONS } from '../src/domains.ts';
import { plugAll, type DeletionStep, type DomainPlugin } from '../src/plugin/registry.ts';
import { createTestEnv } from './helpers/runtime.ts';

const step = (name: string, phase: 'before' | 'after', order: number): DeletionStep =>
  ({ name, phase, order, run: async () => null });
// The registry itself never touches the context; the domains below do not either.
const ctx = {} as Ctx;

describe('the plug-in registry', () => {
  it('orders deletion steps by phase then declared order, whatever the plug order', () => {
    const r = plugAll(ctx, [
      { name: 'late', plug: (_c, reg) => { reg.deletionStep(step('journal', 'after', 90)); reg.deletionStep(step('cases', 'after', 20)); } },
      { name: 'early', plug: (_c, reg) => { reg.deletionStep(step('redaction', 'after', 10)); reg.deletionStep(step('archive', 'before', 10)); } },
    ]);
    expect(r.deletionSteps.map((s) => s.name)).toEqual(['archive', 'redaction', 'cases', 'journal']);
  });

  it('a port is provided once: a second domain cannot replace it; a missing one fails when used', () => {
    const provider = (name: string): DomainPlugin => ({ name, plug: (_c, reg) => reg.provide('webhookUrlCheck', async () => undefined) });
    expect(() => plugAll(ctx, [provider('a'), provider('b')])).toThrow(/already provided by a; b cannot replace it/);
    let getter: (() => unknown) | undefined;
    const r = plugAll(ctx, [{ name: 'consumer', plug: (_c, reg) => { getter = reg.port('erasureJournal'); } }]);
    expect(() => getter!()).toThrow(/No domain provides the port "erasureJournal"/);
    expect(() => r.port('deletion')).toThrow(/No domain provides/);
  });

  it('jobs, deletion steps and settings fields are registered once', () => {
    const twice = (plug: DomainPlugin['plug']) => () => plugAll(ctx, [{ name: 'a', plug }, { name: 'b', plug }]);
    expect(twice((_c, reg) => reg.job({ name: 'j', run: async () => ({}) }))).toThrow(/Job "j" registered twice/);
    expect(twice((_c, reg) => reg.deletionStep(step('s', 'after', 1)))).toThrow(/registered twice/);
    expect(twice((_c, reg) => reg.settingsSection({ fields: ['gracePeriodDays'] }))).toThrow(/claimed by a and b/);
  });

  it('every domain of the app is plugged: its migrations, routes, steps, jobs and ports are in one registry', async () => {
    expect(Object.keys(MIGRATIONS)).toEqual([...Object.keys(MIGRATIONS)].sort());
    expect(Object.keys(MIGRATIONS).slice(0, 5)).toEqual(['0001-spine', '0002-erasure', '0003-webhooks', '0004-notifications', '0005-backups']);
    const env = await createTestEnv();
    try {
      const { registry } = env.services;
      expect(registry.domains).toEqual(DOMAINS.map((d) => d.name));
      expect(registry.deletionSteps.map((s) => `${s.phase}:${s.name}`))
        .toEqual(['before:keyring', 'before:backup', 'after:redaction', 'after:deletionCases', 'after:deliveryExcerpts', 'after:erasure-journal']);
      expect([...registry.jobs.keys()].sort()).toEqual(['deletion-notifications', 'grace-periods', 'retention']);
      expect(registry.retentionTasks.map((t) => t.name)).toEqual(['idempotency-keys', 'redaction-backlog', 'backups', 'operational-tables', 'keys']);
      for (const port of ['subjectExport', 'deletion', 'recordErasure', 'webhookUrlCheck', 'webhookDispatcher', 'deletionCases', 'erasureJournal', 'archives', 'apiKeys'] as const) {
        expect(registry.port(port), port).toBeDefined();
      }
      // Every route module is a domain's: the core ones included.
      expect(new Set(registry.routes.map((r) => r.domain))).toEqual(new Set(['http', 'audit', 'applications', 'auth', 'customers', 'erasure',
        'notifications', 'exports', 'backups', 'jobs', 'evidence', 'stats', 'operator', 'console']));
    } finally {
      await env.close();
    }
  });
});
