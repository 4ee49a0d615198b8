// The console's only way to the API: same origin, bearer key from sessionStorage, problem+json
// errors turned into readable messages.

const KEY = 'lethe.operatorKey';

export function getKey(): string | null {
  try { return sessionStorage.getItem(KEY); } catch { return null; }
}
export function setKey(key: string | null) {
  if (key === null) sessionStorage.removeItem(KEY);
  else sessionStorage.setItem(KEY, key);
}

export class ApiError extends Error {
  status: number;
  code: string;
  title: string;
  detail: string;
  requestId: string | null;
  constructor(status: number, title: string, detail: string, code: string, requestId: string | null) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.code = code;
    this.title = title;
    this.detail = detail;
    this.requestId = requestId;
  }
  /** The route itself does not exist yet (a feature this server does not offer). */
  get missingRoute(): boolean {
    return this.status === 404 && /^No route /.test(this.detail);
  }
}

const listeners = new Set<() => void>();
/** Called when the API says the key is no longer valid (401): the app returns to sign-in. */
export function onUnauthorized(fn: () => void) { listeners.add(fn); return () => { listeners.delete(fn); }; }

export interface RequestOptions { body?: unknown; query?: Record<string, string | number | undefined | null>; key?: string }

export async function api<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const key = options.key ?? getKey();
  const headers: Record<string, string> = { accept: 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.body);
  }
  let url = path;
  if (options.query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(options.query)) if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
    const s = qs.toString();
    if (s) url += `?${s}`;
  }
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' });
  } catch {
    throw new ApiError(0, 'Network error', 'The server could not be reached. Check that Lethe is running.', 'network', null);
  }
  const text = await res.text();
  const type = res.headers.get('content-type') ?? '';
  let parsed: unknown = text;
  if (text && type.includes('json')) {
    try { parsed = JSON.parse(text); } catch { parsed = text; }
  }
  if (!res.ok) {
    const p = (parsed && typeof parsed === 'object' ? parsed : {}) as Record<string, unknown>;
    const title = typeof p.title === 'string' ? p.title : `${res.status} ${res.statusText || 'Error'}`;
    const detail = typeof p.detail === 'string' ? p.detail : (typeof parsed === 'string' && parsed.length < 300 ? parsed : '');
    const err = new ApiError(res.status, title, detail, typeof p.code === 'string' ? p.code : 'error',
      typeof p.requestId === 'string' ? p.requestId : res.headers.get('x-request-id'));
    if (res.status === 401 && !options.key) for (const l of listeners) l();
    throw err;
  }
  return (text ? parsed : null) as T;
}

export interface Page<T> { data: T[]; nextCursor: string | null }

/** Downloads an API response as a file (the key goes in a header, so a plain link cannot do it). */
export async function download(path: string, filename: string, query?: Record<string, string>): Promise<void> {
  const key = getKey();
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  const res = await fetch(url, { headers: key ? { authorization: `Bearer ${key}` } : {}, cache: 'no-store' });
  if (!res.ok) {
    let p: Record<string, unknown> = {};
    try { p = await res.json() as Record<string, unknown>; } catch { /* not problem+json */ }
    throw new ApiError(res.status, typeof p.title === 'string' ? p.title : `${res.status} ${res.statusText}`,
      typeof p.detail === 'string' ? p.detail : '', typeof p.code === 'string' ? p.code : 'error', res.headers.get('x-request-id'));
  }
  const blob = await res.blob();
  const href = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = href;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
}

/** Walks every page of a list (bounded), for counts on the overview. */
export async function countAll(path: string, query: Record<string, string> = {}, maxPages = 20,
  keep?: (row: Record<string, unknown>) => boolean): Promise<{ count: number; capped: boolean }> {
  let cursor: string | null = null;
  let count = 0;
  for (let i = 0; i < maxPages; i++) {
    const page: Page<Record<string, unknown>> = await api('GET', path, { query: { ...query, limit: 500, cursor } });
    count += keep ? page.data.filter(keep).length : page.data.length;
    cursor = page.nextCursor;
    if (!cursor) return { count, capped: false };
  }
  return { count, capped: true };
}

export interface Customer {
  id: string; salutation: string | null; firstName: string | null; lastName: string | null; displayName: string | null;
  email: string | null; organization: string | null; tin: string | null; lastLoginSuccessIp: string | null;
  lastLoginFailureIp: string | null; sdkRegisterIp: string | null; metadata: Record<string, string>;
  legalHold: boolean; profilePhotoUrl: string | null; createdAt: string; updatedAt: string;
}

export interface Application {
  id: string; name: string; webhookUrl: string | null; enabled: boolean; disabledReason: string | null;
  failingSince: string | null; createdAt: string; updatedAt: string; webhookSecret?: string;
}

export interface Preview {
  customerId: string; deletable: boolean; blockers: Array<{ code: string; detail: string; count?: number }>;
  softDeleted: Record<string, number>; cancelled: { subscriptions: number; licenses: number };
  preservedTransactions: number; activityEntries: number; profilePhoto: boolean; applicationsToNotify: string[];
  [extra: string]: unknown;
}

export interface Receipt {
  customerId: string; deletedAt: string; deletedByKeyId: string | null; softDeleted: Record<string, number>;
  cancelled: { subscriptions: number; licenses: number }; preservedTransactions: number; applicationsNotified: string[];
  auditEventId: string; auditHash: string; redaction: Record<string, unknown> | null; backupId: string | null;
  [extra: string]: unknown;
}

/** A deletion case; fields beyond the core are shown as they come. */
export interface DeletionCase {
  id?: string; subscriptionId: string; applicationId: string; status: string; reason?: string | null;
  graceEndsAt?: string | null; requiredSince?: string | null; confirmedAt?: string | null;
  confirmedByKeyId?: string | null; createdAt?: string; updatedAt?: string; overdue?: boolean;
  [extra: string]: unknown;
}

export interface AuditEvent {
  seq: number; id: string; type: string; actorKeyId: string | null; subjectType: string | null; subjectId: string | null;
  data: Record<string, unknown>; createdAt: string; prevHash: string; hash: string;
}
