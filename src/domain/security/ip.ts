/** Address classes for IP trust: loopback, private/LAN, and configured lists (addresses or CIDR ranges). */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** "::ffff:1.2.3.4" → "1.2.3.4"; strips a zone id. */
export function normalizeIp(ip: string): string {
  let s = ip.trim();
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  if (s.toLowerCase().startsWith('::ffff:') && isIPv4(s.slice(7))) return s.slice(7);
  return s;
}

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

const lan = new BlockList();
lan.addSubnet('10.0.0.0', 8, 'ipv4');
lan.addSubnet('172.16.0.0', 12, 'ipv4');
lan.addSubnet('192.168.0.0', 16, 'ipv4');
lan.addSubnet('169.254.0.0', 16, 'ipv4');
lan.addSubnet('fc00::', 7, 'ipv6');
lan.addSubnet('fe80::', 10, 'ipv6');

function family(ip: string): 'ipv4' | 'ipv6' | undefined {
  return isIPv4(ip) ? 'ipv4' : isIPv6(ip) ? 'ipv6' : undefined;
}

function check(list: BlockList, ip: string): boolean {
  const f = family(ip);
  return f ? list.check(ip, f) : false;
}

export const isLoopback = (ip: string): boolean => check(loopback, normalizeIp(ip));
export const isPrivate = (ip: string): boolean => check(lan, normalizeIp(ip));

/** A list of addresses and CIDR ranges (as the options hold them). */
export class IpSet {
  private readonly list = new BlockList();
  readonly size: number;
  constructor(items: readonly string[]) {
    for (const it of items) {
      const [addr, bits] = it.split('/');
      const f = family(addr!);
      if (!f) continue;
      if (bits !== undefined) this.list.addSubnet(addr!, Number(bits), f);
      else this.list.addAddress(addr!, f);
    }
    this.size = items.length;
  }
  has(ip: string): boolean {
    return this.size > 0 && check(this.list, normalizeIp(ip));
  }
}
