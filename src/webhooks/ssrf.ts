import dns from 'node:dns';
import type { LookupAddress, LookupOptions } from 'node:dns';
import ipaddr from 'ipaddr.js';
import { checkWebhookUrlBasic } from '../applications/webhook-url.ts';
import { AppError } from '../http/errors.ts';

/**
 * The SSRF guard for webhook URLs. A URL is refused when its host, in any spelling, is or
 * resolves to an address that is not plain public unicast: loopback, private (RFC 1918), CGNAT,
 * link-local (incl. cloud metadata 169.254.169.254), unique-local, unspecified, multicast,
 * broadcast, reserved/documentation, NAT64/6to4/Teredo (they embed IPv4 addresses), or a known
 * metadata hostname. It runs twice: when a URL is registered, and when the dispatcher connects
 * (its `lookup` re-resolves and re-checks, so DNS rebinding between the two is caught).
 *
 * Spellings: the WHATWG URL parser normalises decimal (2130706433), hex (0x7f000001), octal
 * (0177.0.0.1), short (127.1) and full-width IPv4 forms, IDN (UTS 46 mapping, e.g. "ⓛocalhost")
 * and `user@host` (the host is what follows the @; credentials are refused anyway). IPv4-mapped
 * IPv6 (::ffff:127.0.0.1) is judged by the IPv4 address it maps to.
 */

/** Resolves a host name to every address it has (A and AAAA). Injected in tests (no DNS here). */
export type Resolver = (hostname: string) => Promise<string[]>;

export const systemResolver: Resolver = async (hostname) =>
  (await dns.promises.lookup(hostname, { all: true, verbatim: true })).map((a) => a.address);

/** Host names that reach cloud metadata services or this machine whatever DNS says. */
const BLOCKED_NAMES = new Set([
  'localhost', 'metadata', 'metadata.google.internal', 'metadata.goog', 'instance-data', 'instance-data.ec2.internal',
  'metadata.azure.com', 'metadata.packet.net', 'metadata.platformequinix.com',
]);
const BLOCKED_SUFFIXES = ['.localhost', '.internal', '.local', '.localdomain', '.home.arpa'];

const EMBEDDING_V4: Array<[ipaddr.IPv6, number]> = [
  [ipaddr.IPv6.parse('::'), 96], [ipaddr.IPv6.parse('::ffff:0:0:0'), 96], [ipaddr.IPv6.parse('64:ff9b:1::'), 48],
  [ipaddr.IPv6.parse('64:ff9b::'), 96], [ipaddr.IPv6.parse('2002::'), 16], [ipaddr.IPv6.parse('2001::'), 32],
];

/** Is this IP address one a webhook may be sent to? Only global unicast addresses are. */
export function isPublicAddress(address: string): boolean {
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try { ip = ipaddr.parse(address); } catch { return false; }
  if (ip.kind() === 'ipv6') {
    const v6 = ip as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) ip = v6.toIPv4Address();
    // Forms that embed an IPv4 address (and reach it on some stacks): IPv4-compatible ::/96 (e.g.
    // [::127.0.0.1]), SIIT ::ffff:0:0:0/96, local-use NAT64 64:ff9b:1::/48. Never a webhook target.
    else if (EMBEDDING_V4.some(([net, bits]) => v6.match(net, bits))) return false;
  }
  return ip.range() === 'unicast';
}

/** The host of a parsed URL without IPv6 brackets and without a trailing root dot, lower case. */
export function hostOf(url: URL): string {
  let host = url.hostname.toLowerCase();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  while (host.endsWith('.')) host = host.slice(0, -1);
  return host;
}

export function isBlockedName(host: string): boolean {
  return BLOCKED_NAMES.has(host) || BLOCKED_SUFFIXES.some((s) => host.endsWith(s));
}

const refuse = (why: string) => new AppError('unsafe_webhook_url', `body.webhookUrl ${why}`);

export interface SsrfGuard {
  /** Throws 400 unsafe_webhook_url (or validation_failed for a malformed URL) unless the URL is safe. */
  checkUrl(raw: string): Promise<void>;
  /**
   * Checks the host of a URL about to be connected to, without DNS: literal addresses and blocked
   * names. Names are checked again by `lookup` at connect time. Returns a reason or null.
   */
  literalProblem(url: URL): string | null;
  /** A `net` lookup function that refuses non-public addresses; undefined when private ones are allowed. */
  lookup: LookupFunction | undefined;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
export type LookupFunction = (hostname: string, options: LookupOptions, callback: LookupCallback) => void;

export class UnsafeAddressError extends Error {
  readonly code = 'EUNSAFEADDRESS';
}

export function createSsrfGuard(options: { allowPrivate: boolean; resolve?: Resolver }): SsrfGuard {
  const resolve = options.resolve ?? systemResolver;

  function literalProblem(url: URL): string | null {
    const host = hostOf(url);
    if (ipaddr.isValid(host)) return isPublicAddress(host) ? null : 'points to a non-public address';
    if (isBlockedName(host)) return 'names a local or metadata host';
    return null;
  }

  async function checkUrl(raw: string): Promise<void> {
    const url = await checkWebhookUrlBasic(raw);
    if (options.allowPrivate) return;
    if (url.port === '0') throw refuse('has port 0');
    const problem = literalProblem(url);
    if (problem) throw refuse(problem);
    const host = hostOf(url);
    if (ipaddr.isValid(host)) return;
    if (!host.includes('.')) throw refuse('must name a fully qualified host');
    let addresses: string[];
    try { addresses = await resolve(host); } catch { throw refuse('host does not resolve'); }
    if (addresses.length === 0) throw refuse('host does not resolve');
    if (!addresses.every(isPublicAddress)) throw refuse('host resolves to a non-public address');
  }

  // Connect-time check: every address the name resolves to must be public, then we connect to
  // those very addresses (no second resolution the attacker could rebind).
  const lookup: LookupFunction = (hostname, opts, callback) => {
    const host = hostname.replace(/\.+$/, '').toLowerCase();
    const fail = (msg: string) => callback(Object.assign(new UnsafeAddressError(msg), { hostname }), opts.all ? [] : '', 0);
    if (isBlockedName(host)) { fail('host is a local or metadata name'); return; }
    resolve(host).then((addresses) => {
      if (addresses.length === 0) { callback(Object.assign(new Error('host does not resolve'), { code: 'ENOTFOUND' }), opts.all ? [] : '', 0); return; }
      if (!addresses.every(isPublicAddress)) { fail('host resolves to a non-public address'); return; }
      const wanted = opts.family === 4 || opts.family === 6 ? addresses.filter((a) => ipaddr.parse(a).kind() === `ipv${opts.family}`) : addresses;
      const list: LookupAddress[] = wanted.map((a) => ({ address: a, family: ipaddr.parse(a).kind() === 'ipv6' ? 6 : 4 }));
      if (list.length === 0) { callback(Object.assign(new Error('no address of the wanted family'), { code: 'ENOTFOUND' }), opts.all ? [] : '', 0); return; }
      if (opts.all) callback(null, list);
      else callback(null, list[0]!.address, list[0]!.family);
    }, (error: NodeJS.ErrnoException) => callback(error, opts.all ? [] : '', 0));
  };

  return {
    checkUrl,
    literalProblem: (url) => (options.allowPrivate ? null : literalProblem(url)),
    lookup: options.allowPrivate ? undefined : lookup,
  };
}
