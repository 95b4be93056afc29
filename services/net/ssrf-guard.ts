import { promises as dns, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

/** Why a URL was refused; `message` is safe to show to a client or a model. */
export class SsrfError extends Error {
  constructor(
    message: string,
    readonly reason:
      'scheme' | 'credentials' | 'host_not_allowed' | 'address_refused' | 'dns' | 'url',
    cause?: unknown,
  ) {
    super(message, { cause });
    this.name = 'SsrfError';
  }
}

/** Resolves a host name to every address it has (the default is `dns.lookup` with `all`). */
export type ResolveHost = (host: string) => Promise<LookupAddress[]>;

export interface SsrfGuardOptions {
  /** Hosts that may be reached at all (`example.com`, `*.example.com`); null: any host. */
  allowHosts: readonly string[] | null;
  /**
   * Hosts the operator vouches for: they may resolve to private addresses and use plain http
   * (an in-cluster webhook receiver, for example). Everything else must be https to a public address.
   */
  trustedHosts?: readonly string[];
  resolve?: ResolveHost;
}

export interface SsrfGuard {
  /**
   * Checks a URL before it is fetched: http(s) only, https unless the host is trusted, no
   * credentials, host allowed, and every address it resolves to public.
   * @throws SsrfError
   */
  check(url: string | URL): Promise<URL>;
  /**
   * A `net` lookup for the HTTP agent that makes the connection: it resolves again and refuses
   * non-public addresses at connect time, so a DNS answer that changes after `check` (rebinding)
   * cannot reach a private address.
   */
  readonly lookup: LookupFunction;
}

/** IPv6 global unicast (RFC 4291 2.4): the only IPv6 block whose addresses are public. */
const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');
/** IPv4-compatible IPv6 (deprecated by RFC 4291): routed by tunnels or the default route. */
const IPV4_COMPATIBLE_V6 = ipaddr.parseCIDR('::/96');

/**
 * The ipaddr.js range of an address: `unicast` for an ordinary public address, otherwise the
 * name of the special range (`private`, `loopback`, `linkLocal` — which holds the cloud
 * metadata address 169.254.169.254 —, `uniqueLocal`, `carrierGradeNat`, `unspecified`, …).
 * IPv4-mapped IPv6 addresses are classified as the IPv4 address they carry; an IPv6 address
 * outside 2000::/3 is never `unicast`: `ipv4Compatible` in ::/96 (`::7f00:1`, which the URL
 * parser makes of `::127.0.0.1`), else `notGlobalUnicast`.
 */
export function classifyAddress(address: string): string {
  if (!ipaddr.isValid(address)) return 'invalid';
  const parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv4') return parsed.range();
  const v6 = parsed as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address().range();
  const range = v6.range();
  if (range !== 'unicast') return range;
  if (v6.match(IPV4_COMPATIBLE_V6)) return 'ipv4Compatible';
  return v6.match(GLOBAL_UNICAST_V6) ? 'unicast' : 'notGlobalUnicast';
}

/** Only ordinary public unicast addresses may be reached. */
export function isPublicAddress(address: string): boolean {
  return classifyAddress(address) === 'unicast';
}

function hostMatches(host: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => {
    const pattern = p.toLowerCase();
    return pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) : host === pattern;
  });
}

/** `[::1]` → `::1`; URL keeps IPv6 literals in brackets. */
function bareHost(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
}

const defaultResolve: ResolveHost = (host) => dns.lookup(host, { all: true, verbatim: true });

/** Builds the guard used by `http_get` (allowlist, nothing trusted) and webhooks (any host, some trusted). */
export function createSsrfGuard(options: SsrfGuardOptions): SsrfGuard {
  const allowHosts = options.allowHosts;
  const trusted = options.trustedHosts ?? [];
  const resolve = options.resolve ?? defaultResolve;

  const resolvePublic = async (host: string): Promise<LookupAddress[]> => {
    let addresses: LookupAddress[];
    try {
      addresses = await resolve(host);
    } catch (err) {
      throw new SsrfError(`Host "${host}" could not be resolved.`, 'dns', err);
    }
    if (addresses.length === 0) throw new SsrfError(`Host "${host}" has no address.`, 'dns');
    if (!hostMatches(host, trusted)) {
      const bad = addresses.find((a) => !isPublicAddress(a.address));
      if (bad) {
        throw new SsrfError(
          `Host "${host}" resolves to a ${classifyAddress(bad.address)} address, which is refused.`,
          'address_refused',
        );
      }
    }
    return addresses;
  };

  const check = async (input: string | URL): Promise<URL> => {
    let url: URL;
    try {
      url = new URL(String(input));
    } catch {
      throw new SsrfError('Not a valid absolute URL.', 'url');
    }
    const host = bareHost(url);
    const isTrusted = hostMatches(host, trusted);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isTrusted)) {
      throw new SsrfError('Only https URLs are allowed.', 'scheme');
    }
    if (url.username || url.password) {
      throw new SsrfError('URLs with credentials are not allowed.', 'credentials');
    }
    if (allowHosts !== null && !hostMatches(host, allowHosts) && !isTrusted) {
      throw new SsrfError(`Host "${host}" is not in the allowlist.`, 'host_not_allowed');
    }
    if (ipaddr.isValid(host)) {
      // An address literal: no DNS, and the connection will not call lookup either.
      if (!isTrusted && !isPublicAddress(host)) {
        throw new SsrfError(
          `Address ${host} is ${classifyAddress(host)}, which is refused.`,
          'address_refused',
        );
      }
      return url;
    }
    await resolvePublic(host);
    return url;
  };

  const lookup: LookupFunction = (hostname, opts, callback) => {
    resolvePublic(hostname.toLowerCase()).then(
      (addresses) => {
        const family = typeof opts === 'object' ? opts.family : undefined;
        const wanted =
          family === 4 || family === 6 ? addresses.filter((a) => a.family === family) : addresses;
        const list = wanted.length > 0 ? wanted : addresses;
        if (typeof opts === 'object' && opts.all) callback(null, list);
        else callback(null, list[0]?.address ?? '', list[0]?.family ?? 4);
      },
      (err: Error) =>
        callback(Object.assign(err, { code: 'ENOTFOUND' }) as NodeJS.ErrnoException, '', 4),
    );
  };

  return { check, lookup };
}
