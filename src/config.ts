import net from 'node:net';
import path from 'node:path';
import { defaultKeyringDir, isInside } from './crypto/keyring.ts';

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
  /** Key-epoch keys (crypto-shredding): LETHE_KEYRING_DIR, beside and never inside the data directory. */
  keyringDir: string;
  logLevel: string;
  schedulerEnabled: boolean;
  dispatcherEnabled: boolean;
  rateLimitPerMinute: number;
  /** Requests per minute per client address, counted before the key lookup (LETHE_RATE_LIMIT_PER_ADDRESS_PER_MINUTE). */
  rateLimitPerAddressPerMinute: number;
  /** Proxies whose X-Forwarded-For is believed (LETHE_TRUSTED_PROXIES: addresses or CIDRs); empty: the socket's address. */
  trustedProxies: string[];
  /** When set, GET /metrics needs `Authorization: Bearer <token>` (LETHE_METRICS_TOKEN). */
  metricsToken: string | undefined;
  instanceId: string;
  /** Delays before webhook retries 1..n, in ms (LETHE_WEBHOOK_RETRY_SCHEDULE, e.g. "5s,5m,30m,2h,5h,10h"). */
  webhookRetrySchedule: number[];
  webhookConcurrencyPerEndpoint: number;
  webhookTimeoutMs: number;
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

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "5s,5m,30m,2h" → [5000, 300000, ...]; a bare number is seconds. */
export function parseDurations(name: string, raw: string | undefined, fallback: number[]): number[] {
  if (raw === undefined || raw.trim() === '') return fallback;
  const out = raw.split(',').map((part) => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(part);
    if (!m) throw new ConfigError(`${name} must be a comma-separated list of durations like "5s,5m,2h", got "${raw}"`);
    return Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? 's']!);
  });
  if (out.length > 50) throw new ConfigError(`${name} may list at most 50 retries`);
  return out;
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
  const keyringDir = path.resolve(env.LETHE_KEYRING_DIR || defaultKeyringDir(dataDir));
  if (isInside(keyringDir, dataDir)) {
    throw new ConfigError('LETHE_KEYRING_DIR must not be inside the data directory (a copy of the data directory must never hold the keyring)');
  }
  const trustedProxies = (env.LETHE_TRUSTED_PROXIES ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  for (const proxy of trustedProxies) {
    const [addr, bits, ...rest] = proxy.split('/');
    const okBits = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (net.isIPv6(addr ?? '') ? 128 : 32));
    if (rest.length > 0 || !net.isIP(addr ?? '') || !okBits) {
      throw new ConfigError(`LETHE_TRUSTED_PROXIES must list IP addresses or CIDR ranges separated by commas, got "${proxy}"`);
    }
  }
  const metricsToken = env.LETHE_METRICS_TOKEN || undefined;
  if (metricsToken !== undefined && metricsToken.length < 16) {
    throw new ConfigError('LETHE_METRICS_TOKEN must be at least 16 characters');
  }
  return {
    keyringDir,
    trustedProxies,
    metricsToken,
    rateLimitPerAddressPerMinute: int('LETHE_RATE_LIMIT_PER_ADDRESS_PER_MINUTE', env.LETHE_RATE_LIMIT_PER_ADDRESS_PER_MINUTE, 60_000, 1, 10_000_000),
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
    webhookRetrySchedule: parseDurations('LETHE_WEBHOOK_RETRY_SCHEDULE', env.LETHE_WEBHOOK_RETRY_SCHEDULE,
      [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000]),
    webhookConcurrencyPerEndpoint: int('LETHE_WEBHOOK_CONCURRENCY_PER_ENDPOINT', env.LETHE_WEBHOOK_CONCURRENCY_PER_ENDPOINT, 10, 1, 1000),
    webhookTimeoutMs: int('LETHE_WEBHOOK_TIMEOUT_MS', env.LETHE_WEBHOOK_TIMEOUT_MS, 15_000, 1, 60_000),
    instanceId: env.LETHE_INSTANCE_ID || `${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
  };
}
