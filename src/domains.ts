import { applicationsPlugin } from './applications/applications.plugin.ts';
import { auditPlugin } from './audit/audit.plugin.ts';
import { authPlugin } from './auth/auth.plugin.ts';
import { backupsPlugin } from './backups/backups.plugin.ts';
import { consolePlugin } from './console/console.plugin.ts';
import { cryptoPlugin } from './crypto/crypto.plugin.ts';
import { customersPlugin } from './customers/customers.plugin.ts';
import { spinePlugin } from './db/spine.plugin.ts';
import { deploymentPlugin } from './deployment/deployment.plugin.ts';
import { erasurePlugin } from './erasure/erasure.plugin.ts';
import { evidencePlugin } from './evidence/evidence.plugin.ts';
import { exportsPlugin } from './exports/exports.plugin.ts';
import { httpPlugin } from './http/http.plugin.ts';
import { jobsPlugin } from './jobs/jobs.plugin.ts';
import { notificationsPlugin } from './notifications/notifications.plugin.ts';
import { operatorPlugin } from './operator/operator.plugin.ts';
import { cliCommandsOf, migrationsOf, type DomainPlugin } from './plugin/registry.ts';
import { statsPlugin } from './stats/stats.plugin.ts';
import { webhooksPlugin } from './webhooks/webhooks.plugin.ts';

/**
 * Every domain, once. The order is the order routes are registered, retention tasks run and
 * background tasks start; deletion steps order themselves (`phase`, `order`) and ports resolve at
 * call time, so no domain depends on being plugged before another. A new domain is one line here.
 */
export const DOMAINS: readonly DomainPlugin[] = [
  spinePlugin,
  httpPlugin,
  auditPlugin,
  applicationsPlugin,
  authPlugin,
  customersPlugin,
  erasurePlugin,
  webhooksPlugin,
  notificationsPlugin,
  exportsPlugin,
  backupsPlugin,
  deploymentPlugin,
  cryptoPlugin, // after backups: its retention task (keys) follows the archives' destruction
  jobsPlugin,
  evidencePlugin,
  statsPlugin,
  operatorPlugin,
  consolePlugin, // last: its wildcard route under /console/
];

/** Every migration, in name order (`lethe migrate`, start-up, /readyz). */
export const MIGRATIONS = migrationsOf(DOMAINS);

/** Every `lethe …` command a domain contributes. */
export const CLI_COMMANDS = cliCommandsOf(DOMAINS);
