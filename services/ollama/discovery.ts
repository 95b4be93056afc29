/**
 * OLLAMA_DISCOVERY: Ollama backends found through DNS (a headless Service has one address per
 * ready pod), the URL each address is reached at, and which backends join and leave when the
 * name resolves again.
 */
import { lookup } from 'node:dns/promises';

/** Resolves a DNS name to the addresses behind it (a headless Service: one per ready pod). */
export type Resolver = (hostname: string) => Promise<string[]>;

/** The production resolver: every address getaddrinfo knows for the name (IPv4 and IPv6). */
export const dnsResolver: Resolver = async (hostname) => {
  try {
    return (await lookup(hostname, { all: true })).map((a) => a.address);
  } catch (err) {
    // A headless Service with no ready pod has no records: that is an empty set, not a fault.
    const code = (err as { code?: string }).code;
    if (code === 'ENOTFOUND' || code === 'ENODATA') return [];
    throw err;
  }
};

/** The name OLLAMA_DISCOVERY resolves (an IPv6 literal without its brackets). */
export function discoveryName(template: URL): string {
  return template.hostname.replace(/^\[|\]$/g, '');
}

/** The base URL of a discovered address, from the OLLAMA_DISCOVERY URL (scheme, port, path). */
export function urlFor(template: URL, address: string): string {
  const host = address.includes(':') ? `[${address}]` : address;
  const auth = template.username
    ? `${template.username}${template.password ? `:${template.password}` : ''}@`
    : '';
  const port = template.port === '' ? '' : `:${template.port}`;
  const path = template.pathname.replace(/\/+$/, '');
  return `${template.protocol}//${auth}${host}${port}${path}`;
}

/** A backend as discovery sees it: the address it was found at (none: configured), draining or not. */
export interface Discovered {
  id: string;
  address?: string;
  draining: boolean;
}

/**
 * Compares the known backends with the addresses the name resolves to now: a backend whose
 * address is back stops draining, one whose address is gone starts (its in-flight work
 * finishes first); the addresses nobody holds yet are returned, to join. Configured backends
 * (no address) are left as they are.
 */
export function reconcile(
  known: Iterable<Discovered>,
  addresses: readonly string[],
  onDrain: (b: Discovered) => void,
): string[] {
  const wanted = new Set(addresses);
  for (const b of known) {
    if (b.address === undefined) continue;
    if (wanted.has(b.address)) {
      b.draining = false;
      wanted.delete(b.address);
    } else if (!b.draining) {
      b.draining = true;
      onDrain(b);
    }
  }
  return [...wanted];
}
