import path from 'node:path';

/** Everything the process reads from its environment, parsed once at start and passed down. */
export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  adminKey: string | undefined;
  masterKey: string | undefined;
  webhookAllowPrivate: boolean;
  backupDir: string;
  logLevel: string;
  schedulerEnabled: boolean;
  dispatcherEnabled: boolean;
  rateLimitPerMinute: number;
  instanceId: string;
}

export class ConfigError extends Error {}

function bool(name: string, raw: string | undefined, fallback: boolean): boolean {
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

function int(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const dataDir = path.resolve(env.LETHE_DATA_DIR || './data');
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL must be a postgres:// or postgresql:// URL');
  }
  const adminKey = env.LETHE_ADMIN_KEY || undefined;
  if (adminKey !== undefined && adminKey.length < 24) {
    throw new ConfigError('LETHE_ADMIN_KEY must be at least 24 characters');
  }
  const masterKey = env.LETHE_MASTER_KEY || undefined;
  if (masterKey !== undefined && Buffer.from(masterKey, 'base64').length < 32) {
    throw new ConfigError('LETHE_MASTER_KEY must be at least 32 bytes, base64-encoded');
  }
  return {
    port: int('PORT', env.PORT, 8080, 0, 65535),
    host: env.HOST || '0.0.0.0',
    dataDir,
    databaseUrl,
    adminKey,
    masterKey,
    webhookAllowPrivate: bool('LETHE_WEBHOOK_ALLOW_PRIVATE', env.LETHE_WEBHOOK_ALLOW_PRIVATE, false),
    backupDir: path.resolve(env.LETHE_BACKUP_DIR || path.join(dataDir, 'backups')),
    logLevel: env.LOG_LEVEL || 'info',
    schedulerEnabled: bool('LETHE_SCHEDULER', env.LETHE_SCHEDULER, true),
    dispatcherEnabled: bool('LETHE_DISPATCHER', env.LETHE_DISPATCHER, true),
    rateLimitPerMinute: int('LETHE_RATE_LIMIT_PER_MINUTE', env.LETHE_RATE_LIMIT_PER_MINUTE, 60_000, 1, 10_000_000),
    instanceId: env.LETHE_INSTANCE_ID || `${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
  };
}
