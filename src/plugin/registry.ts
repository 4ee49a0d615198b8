import type { FastifyInstance, FastifyBaseLogger, FastifyTypeProvider, RawReplyDefaultExpression,
  RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import type { Static, TSchema } from 'typebox';
import type { Migration } from 'kysely/migration';
import type { Config } from '../config.ts';
import type { Ctx } from '../context.ts';
import type { Db } from '../db/database.ts';
import type { SqlText } from '../db/sql-text.ts';
import type { CommonTableExpressionOutput, QueryCreator } from 'kysely';
import type { Customer, Database } from '../db/schema.ts';

/**
 * The one way a domain plugs into Lethe. A leaf: it imports types from the infrastructure
 * (db, config, context) and nothing from any domain. Every domain — customers and audit as much
 * as backups — exports one `DomainPlugin` (in `<domain>/<domain>.plugin.ts`), listed once in
 * `src/domains.ts`. See docs/architecture.md.
 */

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

/**
 * Who may call a route: an operator key, an application key, either (`any`), or nobody needs a
 * key (`public`). Declared by every route as `config: { access }`; http/auth.ts enforces it.
 */
export type Access = 'operator' | 'application' | 'any' | 'public';

/**
 * Types a handler's `params`, `querystring`, `body` and `headers` from the route's TypeBox schemas
 * (as @fastify/type-provider-typebox's validator side does). Replies are not typed from the
 * response schema: handlers return `Date`s, which the app's preSerialization hook turns into the
 * ISO strings the schema declares.
 */
export interface RequestTypeProvider extends FastifyTypeProvider {
  validator: this['schema'] extends TSchema ? Static<this['schema']> : unknown;
  serializer: unknown;
}

/** The Fastify instance a domain's routes are registered on: handlers get typed params, query and body. */
export type TypedApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression,
  FastifyBaseLogger, RequestTypeProvider>;

/** A function registering one domain's routes (`app.get(url, { config: { access }, schema }, handler)`). */
export type RouteModule = (app: TypedApp) => void | Promise<void>;

// ---------------------------------------------------------------------------------------------
// Deletion steps
// ---------------------------------------------------------------------------------------------

export interface DeletionContext {
  customer: Customer;
  at: Date;
  actorKeyId: string | null;
  /** Applications the customer ever held a license for; steps may add more. */
  applicationIds: Set<string>;
  /**
   * The `customer.deleted` activity entry (its id and details), set by the deletion service after
   * the cascade. The service writes it, sealed under the customer's key, unless a step took it
   * over in `cascadeValues` (`deletedEntryWriter`, the step's name): the redaction, which masks it
   * in the same transaction, writes it masked in its own statement instead of sealing it first.
   */
  deletedEntry?: { id: string; details: Record<string, unknown> };
  deletedEntryWriter?: string;
  /**
   * Writes a step needs no answer from, run as CTEs of the deletion's last statement (the audit
   * append that writes the receipt): a round trip fewer each. Same transaction as the rest; they
   * see what earlier statements wrote, not each other's changes.
   */
  deferredWrites: DeferredWrite[];
}

/** A data-modifying statement built on the deletion's last statement (see DeletionContext.deferredWrites). */
export type DeferredWrite = (db: QueryCreator<Database>) => CommonTableExpressionOutput<Database, string>;

/**
 * The columns of the deletion receipt (`deletions` row) that steps fill. A step names the
 * fields it contributes with `receipt`; the deletion service never looks a step up by name.
 */
export interface DeletionReceiptFields {
  /** The redaction record (erasure domain). */
  redaction: Record<string, unknown> | null;
  /** The sealed pre-deletion archive (backups domain). */
  backupId: string | null;
  /** Crypto-shredding: when the customer's data key was destroyed, and the epoch that last wrapped it (erasure's redaction). */
  keyDestroyedAt: string | null;
  keyEpochId: string | null;
}

/**
 * A part of deletion owned by a domain. `before` steps run inside the deletion's transaction
 * before the cascade (they still see the living records), `after` steps after it; both commit or
 * roll back with the deletion. Within a phase, steps run by ascending `order` (ties: registration
 * order). What `run` returns is shown in the deletion's preview under `name` (with `preview`),
 * handed to `afterCommit`, and mapped to receipt columns by `receipt`.
 */
export interface DeletionStep<R = unknown> {
  name: string;
  phase: 'before' | 'after';
  /** Position within the phase; see the table in docs/architecture.md. */
  order: number;
  run(trx: Db, c: DeletionContext): Promise<R>;
  /** The receipt columns this step fills from its result. */
  receipt?(result: R): Partial<DeletionReceiptFields>;
  /** Work outside the database (file removal) once the deletion is committed. */
  afterCommit?(c: DeletionContext, result: R): Promise<void>;
  /** What the step will do, for the preview (`GET /v1/customers/{id}/deletion-preview`). */
  preview?(db: Db, customer: Customer): Promise<unknown>;
  /**
   * New column values the step wants written by the cascade's own UPDATE of a table (so a record
   * gets one row version: soft deleted and, e.g., redacted together). Called after the 'before'
   * steps, before the cascade; `run` still runs in its phase.
   */
  cascadeValues?(trx: Db, c: DeletionContext): Promise<CascadeValues[]>;
  /**
   * A read the step needs, done by the deletion's first statement after the customer is locked
   * (its blocker read) instead of by a statement of its own. Reads only: that statement runs for a
   * deletion its blockers then refuse too. Keep what `adopt` receives per transaction (`trx`).
   */
  prefetch?(trx: Db, customerId: string): Promise<DeletionPrefetch | null>;
}

/** One SQL expression for the blocker statement (built with its parameters) and the step's use of its value. */
export interface DeletionPrefetch {
  select(q: SqlText): string;
  adopt(value: unknown): void;
}

/** Values for the cascade's UPDATE of `sqlTable`, by row id (rows of the deleted customer only). */
export interface CascadeValues {
  sqlTable: string;
  /** Columns set from each row's cells (text; `json` columns cast to jsonb). */
  columns: Array<{ sqlColumn: string; json: boolean }>;
  rows: Array<{ id: string; cells: Array<string | null> }>;
  /** Columns set to NULL on those rows. */
  nulls?: string[];
  /** Columns set to the deletion time on those rows (e.g. redacted_at). */
  stamps?: string[];
}

// ---------------------------------------------------------------------------------------------
// Observers, jobs, background work, CLI
// ---------------------------------------------------------------------------------------------

/** Called inside the license's transaction when a (customer, application) pair gains or loses a license. */
export interface LicenseObserver {
  licenseActivated(trx: Db, customerId: string, applicationId: string, at: Date): Promise<void>;
  licenseCancelled(trx: Db, customerId: string, applicationId: string, at: Date): Promise<void>;
}

/** A scheduled job, run on time by its scheduler and on demand by `POST /v1/jobs/{job}/run`. */
export interface Job {
  name: string;
  run(actorKeyId: string | null): Promise<Record<string, unknown>>;
}

/** One part of the daily `retention` job; returns counts of what it did (no personal data). */
export interface RetentionTask {
  name: string;
  run(at: Date, actorKeyId: string | null): Promise<Record<string, number>>;
}

/** Work that runs beside the server (scheduler, dispatcher), started and stopped by main.ts. */
export interface BackgroundTask { name: string; start(): void; stop(): Promise<void> }

/** A `lethe <command>` contributed by a domain. */
export interface CliCommand {
  usage: string;
  matches(argv: string[]): boolean;
  run(argv: string[], config: Config): Promise<number>;
}

/**
 * The settings one domain owns (its section of the settings row, settings/settings.repo.ts) and
 * the checks a `PATCH /v1/settings` of them must pass. A field is owned by one domain only.
 */
export interface SettingsSection {
  /** Fields of the settings API / columns of `SettingsTable`. */
  fields: readonly string[];
  /**
   * Checks and canonicalizes this section's part of a PATCH (only the fields the patch sets);
   * throws a validation error (http/errors.ts) for a bad value.
   */
  normalize?(patch: Record<string, unknown>): Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Ports: what one domain offers another
// ---------------------------------------------------------------------------------------------

/**
 * Typed services one domain offers others. The providing domain declares its port by merging
 * into this interface:
 *
 *     declare module '../plugin/registry.ts' { interface Ports { erasureJournal: ErasureJournalPort } }
 *
 * and provides it with `r.provide('erasureJournal', impl)`; a consumer asks with
 * `r.port('erasureJournal')`, which returns a getter (resolved at call time, so plug order does
 * not matter). A port is provided once; nobody replaces it.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface Ports {}

// ---------------------------------------------------------------------------------------------
// The plug-in itself
// ---------------------------------------------------------------------------------------------

/** What a domain hands to `plug`: one method per plug-in point. */
export interface Registrar {
  /** The routes of this domain (each declares `config.access`). */
  routes(module: RouteModule): void;
  deletionStep<R>(step: DeletionStep<R>): void;
  licenseObserver(observer: LicenseObserver): void;
  job(job: Job): void;
  retentionTask(task: RetentionTask): void;
  background(task: BackgroundTask): void;
  /** Refreshes gauges computed from the database, before a /metrics scrape. */
  gauge(refresh: () => Promise<void>): void;
  settingsSection(section: SettingsSection): void;
  provide<K extends keyof Ports>(name: K, impl: Ports[K]): void;
  port<K extends keyof Ports>(name: K): () => Ports[K];
  /** The complete registry (all domains plugged): call it at run time, never during `plug`. */
  registry(): Registry;
}

/**
 * One domain. Static parts (`migrations`, `cli`) are read without a running server (`lethe
 * migrate`); `plug` is called once per service graph with the shared context.
 */
export interface DomainPlugin {
  name: string;
  /** Migrations this domain owns, by their global name ("0004-notifications"); append-only. */
  migrations?: Record<string, Migration>;
  cli?: CliCommand[];
  plug?(ctx: Ctx, r: Registrar): void;
}

/** Everything the domains registered, read by app.ts, services.ts, main.ts and the CLI. */
export interface Registry {
  readonly domains: readonly string[];
  readonly migrations: Readonly<Record<string, Migration>>;
  readonly routes: ReadonlyArray<{ domain: string; module: RouteModule }>;
  /** Ordered: phase `before` first, then by `order`. Mutable only for tests that insert a failing step. */
  readonly deletionSteps: DeletionStep[];
  readonly licenseObservers: readonly LicenseObserver[];
  readonly jobs: ReadonlyMap<string, Job>;
  readonly retentionTasks: readonly RetentionTask[];
  readonly background: readonly BackgroundTask[];
  readonly gauges: ReadonlyArray<() => Promise<void>>;
  readonly settingsSections: ReadonlyArray<SettingsSection & { domain: string }>;
  port<K extends keyof Ports>(name: K): Ports[K];
}

const PHASE_RANK = { before: 0, after: 1 } as const;

/** Sorts steps by phase, then order; stable for equal orders. */
export function orderSteps(steps: DeletionStep[]): DeletionStep[] {
  return steps.map((s, i) => ({ s, i }))
    .sort((a, b) => PHASE_RANK[a.s.phase] - PHASE_RANK[b.s.phase] || a.s.order - b.s.order || a.i - b.i)
    .map(({ s }) => s);
}

/** Plugs every domain, in the order given, into one registry. */
export function plugAll(ctx: Ctx, domains: readonly DomainPlugin[]): Registry {
  const routes: Array<{ domain: string; module: RouteModule }> = [];
  const steps: DeletionStep[] = [];
  const observers: LicenseObserver[] = [];
  const jobs = new Map<string, Job>();
  const retentionTasks: RetentionTask[] = [];
  const background: BackgroundTask[] = [];
  const gauges: Array<() => Promise<void>> = [];
  const sections: Array<SettingsSection & { domain: string }> = [];
  const ports = new Map<keyof Ports, { domain: string; impl: unknown }>();

  let complete: Registry | null = null;
  const portOf = <K extends keyof Ports>(name: K): Ports[K] => {
    const p = ports.get(name);
    if (!p) throw new Error(`No domain provides the port "${String(name)}"`);
    return p.impl as Ports[K];
  };

  for (const domain of domains) {
    const d = domain.name;
    const r: Registrar = {
      routes: (module) => { routes.push({ domain: d, module }); },
      deletionStep: (step) => {
        if (steps.some((s) => s.name === step.name)) throw new Error(`Deletion step "${step.name}" registered twice`);
        steps.push(step as DeletionStep);
      },
      licenseObserver: (o) => { observers.push(o); },
      job: (job) => {
        if (jobs.has(job.name)) throw new Error(`Job "${job.name}" registered twice`);
        jobs.set(job.name, job);
      },
      retentionTask: (t) => { retentionTasks.push(t); },
      background: (t) => { background.push(t); },
      gauge: (g) => { gauges.push(g); },
      settingsSection: (s) => {
        for (const f of s.fields) {
          const owner = sections.find((o) => o.fields.includes(f));
          if (owner) throw new Error(`Setting "${f}" claimed by ${owner.domain} and ${d}`);
        }
        sections.push({ ...s, domain: d });
      },
      provide: (name, impl) => {
        const existing = ports.get(name);
        if (existing) throw new Error(`Port "${String(name)}" already provided by ${existing.domain}; ${d} cannot replace it`);
        ports.set(name, { domain: d, impl });
      },
      port: (name) => () => portOf(name),
      registry: () => {
        if (!complete) throw new Error(`${d}: the registry is read at run time, not while domains are plugged`);
        return complete;
      },
    };
    domain.plug?.(ctx, r);
  }

  complete = {
    domains: domains.map((d) => d.name), migrations: migrationsOf(domains),
    routes, deletionSteps: orderSteps(steps), licenseObservers: observers, jobs, retentionTasks, background, gauges,
    settingsSections: sections, port: portOf,
  };
  return complete;
}

/** Every migration of every domain, by name, in name order; names must be unique. */
export function migrationsOf(domains: readonly DomainPlugin[]): Record<string, Migration> {
  const all: Array<[string, Migration]> = [];
  for (const d of domains) {
    for (const [name, m] of Object.entries(d.migrations ?? {})) {
      if (all.some(([n]) => n === name)) throw new Error(`Migration ${name} declared twice`);
      all.push([name, m]);
    }
  }
  return Object.fromEntries(all.sort(([a], [b]) => a.localeCompare(b)));
}

/** Every CLI command of every domain, in domain order. */
export const cliCommandsOf = (domains: readonly DomainPlugin[]): CliCommand[] => domains.flatMap((d) => d.cli ?? []);
