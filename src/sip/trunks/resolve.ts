/**
 * RFC 3263 §4 "Locating a SIP server": a gateway host name becomes an ordered list of hops (transport, address,
 * port). NAPTR picks the transport when none was given (services SIP+D2U, SIP+D2T, SIPS+D2T, by order then
 * preference); SRV (`_sip._udp`, `_sip._tcp`, `_sips._tcp`) gives the targets by priority, and by a weighted random
 * order among equal priorities (RFC 2782); each target's A and AAAA records give the addresses. Without SRV records
 * the name itself is looked up (A/AAAA) with the transport's default port. An IP address is a hop as it is.
 *
 * Answers are cached: A/AAAA for their TTL; node:dns gives no TTL for NAPTR/SRV, so a whole resolution is kept for
 * the smallest TTL of the addresses it led to (at most `maxCacheSeconds`). `dnsservers` (option) names the servers
 * asked; empty, the system's resolver configuration.
 */
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { GatewayDns, GatewayTransport } from '../../domain/routing/types.js';

export interface SipHop {
  transport: GatewayTransport;
  /** An IP address. */
  host: string;
  port: number;
  /** The SRV target (or the host) it came from, for the log and the state shown. */
  name: string;
}

export interface ResolverOptions {
  /** DNS servers (`ip` or `ip:port`); empty: the system's. */
  servers?: readonly string[];
  /** Per-query timeout in ms (default 2000) and tries (default 2). */
  timeoutMs?: number;
  tries?: number;
  maxCacheSeconds?: number;
  rng?: () => number;
  now?: () => number;
}

const SERVICES: Record<string, GatewayTransport> = { 'SIP+D2U': 'udp', 'SIP+D2T': 'tcp', 'SIPS+D2T': 'tls' };
const SRV_PREFIX: Record<GatewayTransport, string> = { udp: '_sip._udp.', tcp: '_sip._tcp.', tls: '_sips._tcp.' };
const defaultPort = (t: GatewayTransport) => (t === 'tls' ? 5061 : 5060);

/** Why a name gave no address (an ERROR / a trunk's failure cause). */
export class ResolveError extends Error {}

interface Srv {
  name: string;
  port: number;
  priority: number;
  weight: number;
}

/** RFC 2782: by priority ascending; within a priority, a weighted random order (weight 0 rarely first). */
export function orderSrv(records: readonly Srv[], rng: () => number = Math.random): Srv[] {
  const byPrio = new Map<number, Srv[]>();
  for (const r of records) byPrio.set(r.priority, [...(byPrio.get(r.priority) ?? []), r]);
  const out: Srv[] = [];
  for (const prio of [...byPrio.keys()].sort((a, b) => a - b)) {
    // zero weights first in the list, as RFC 2782 asks, so that they are picked only by a zero draw
    const rest = [...byPrio.get(prio)!].sort((a, b) => a.weight - b.weight);
    while (rest.length) {
      const total = rest.reduce((n, r) => n + r.weight, 0);
      const draw = rng() * total;
      let sum = 0;
      let i = rest.findIndex((r) => (sum += r.weight) > draw && r.weight > 0);
      if (i < 0 || total === 0) i = 0;
      out.push(rest.splice(i, 1)[0]!);
    }
  }
  return out;
}

export class SipResolver {
  private readonly dns: Resolver;
  private readonly cache = new Map<string, { until: number; hops: SipHop[] }>();
  private readonly rng: () => number;
  private readonly now: () => number;
  private readonly maxCache: number;
  private readonly system: string[];

  constructor(o: ResolverOptions = {}) {
    this.dns = new Resolver({ timeout: o.timeoutMs ?? 2000, tries: o.tries ?? 2 });
    this.system = this.dns.getServers();
    if (o.servers?.length) this.dns.setServers([...o.servers]);
    this.rng = o.rng ?? Math.random;
    this.now = o.now ?? Date.now;
    this.maxCache = (o.maxCacheSeconds ?? 300) * 1000;
  }

  /** The hops of a gateway in the order to try them; throws ResolveError when the name has no address. */
  async resolve(host: string, port: number, transport: GatewayTransport, dns: GatewayDns = ''): Promise<SipHop[]> {
    const h = host.replace(/^\[|\]$/g, '').replace(/\.$/, '');
    if (isIP(h)) return [{ transport, host: h, port, name: h }];
    const key = `${dns}|${transport}|${port}|${h.toLowerCase()}`;
    const hit = this.cache.get(key);
    if (hit && hit.until > this.now()) return hit.hops;
    const ttl = { min: this.maxCache };
    let hops: SipHop[];
    if (dns === 'naptr') hops = await this.viaNaptr(h, ttl);
    else if (dns === 'srv') hops = await this.viaSrv(h, transport, ttl, true);
    else hops = await this.addresses(h, port, transport, ttl);
    if (!hops.length) throw new ResolveError(`the gateway host "${h}" has no address in DNS`);
    this.cache.set(key, { until: this.now() + ttl.min, hops });
    if (this.cache.size > 10_000) this.cache.delete(this.cache.keys().next().value!);
    return hops;
  }

  private async viaNaptr(host: string, ttl: { min: number }): Promise<SipHop[]> {
    const records = (await this.quiet(() => this.dns.resolveNaptr(host))) ?? [];
    const usable = records
      .filter((r) => r.flags.toLowerCase() === 's' && SERVICES[r.service.toUpperCase()] && r.replacement)
      .sort((a, b) => a.order - b.order || a.preference - b.preference);
    for (const r of usable) {
      const t = SERVICES[r.service.toUpperCase()]!;
      const hops = await this.srvTargets(r.replacement, t, ttl);
      if (hops.length) return hops;
    }
    // no NAPTR (§4.1): SRV of each transport we speak, the first that has records; then the name over UDP
    for (const t of ['udp', 'tcp', 'tls'] as const) {
      const hops = await this.viaSrv(host, t, ttl, false);
      if (hops.length) return hops;
    }
    return this.addresses(host, 5060, 'udp', ttl);
  }

  private async viaSrv(host: string, t: GatewayTransport, ttl: { min: number }, fallback: boolean) {
    const hops = await this.srvTargets(SRV_PREFIX[t] + host, t, ttl);
    if (hops.length || !fallback) return hops;
    return this.addresses(host, defaultPort(t), t, ttl);
  }

  private async srvTargets(name: string, t: GatewayTransport, ttl: { min: number }): Promise<SipHop[]> {
    const records = (await this.quiet(() => this.dns.resolveSrv(name))) ?? [];
    const out: SipHop[] = [];
    for (const r of orderSrv(records, this.rng)) {
      if (r.name === '' || r.name === '.') continue; // "service decidedly not available" (RFC 2782)
      out.push(...(await this.addresses(r.name, r.port, t, ttl)));
    }
    return out;
  }

  private async addresses(name: string, port: number, t: GatewayTransport, ttl: { min: number }) {
    const v4 = (await this.quiet(() => this.dns.resolve4(name, { ttl: true }))) ?? [];
    const v6 = (await this.quiet(() => this.dns.resolve6(name, { ttl: true }))) ?? [];
    for (const a of [...v4, ...v6]) ttl.min = Math.min(ttl.min, Math.max(1, a.ttl) * 1000);
    return [...v4, ...v6].map((a) => ({ transport: t, host: a.address, port, name }));
  }

  /** A look-up whose failure (no such name, no data, a timeout) means "no records" here. */
  private async quiet<T>(q: () => Promise<T>): Promise<T | undefined> {
    try {
      return await q();
    } catch {
      return undefined;
    }
  }

  /** Asks these servers from now on (`dnsservers` reloaded); empty: the system's again. */
  setServers(servers: readonly string[]): void {
    this.dns.setServers(servers.length ? [...servers] : this.system);
    this.cache.clear();
  }

  /** Forgets every cached answer (a changed gateway, `dnsservers` reloaded). */
  clear(): void {
    this.cache.clear();
  }
}
