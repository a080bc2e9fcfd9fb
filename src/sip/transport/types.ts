// Transport-level types shared by the stack, the transports and the transaction layer.

export type SipTransport = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';

/** Where a message came from (and on which local socket). `connId` is set for stream/WebSocket transports. */
export interface SipSource {
  transport: SipTransport;
  ip: string;
  port: number;
  connId?: string;
  localIp: string;
  localPort: number;
}

/** Where to send. `connId` (from a SipSource or a registration binding) reuses that connection (NAT). */
export interface SipTarget {
  transport: SipTransport;
  host: string;
  port: number;
  connId?: string;
}

/** Where to send a request to a peer we heard from (its source address: NAT-safe, reusing the connection). */
export function targetOf(src: Pick<SipSource, 'transport' | 'ip' | 'port' | 'connId'>): SipTarget {
  return { transport: src.transport, host: src.ip, port: src.port, connId: src.connId };
}

export function isReliable(t: SipTransport): boolean {
  return t !== 'udp';
}

/** Via transport token for a transport. */
export function viaTransport(t: SipTransport): string {
  switch (t) {
    case 'udp':
      return 'UDP';
    case 'tcp':
      return 'TCP';
    case 'tls':
      return 'TLS';
    case 'ws':
      return 'WS';
    case 'wss':
      return 'WSS';
  }
}

/** Default port of a transport (RFC 3261 §19.1.2, RFC 7118). */
export function defaultPort(t: SipTransport): number {
  switch (t) {
    case 'tls':
      return 5061;
    case 'ws':
      return 80;
    case 'wss':
      return 443;
    default:
      return 5060;
  }
}

/** Strips the IPv4-mapped prefix (`::ffff:1.2.3.4` → `1.2.3.4`) given by dual-stack sockets. */
export function normalizeIp(ip: string | undefined): string {
  if (!ip) return '';
  if (ip.length > 7 && ip.charCodeAt(0) === 58 && ip.startsWith('::ffff:') && ip.indexOf('.') > 0) return ip.slice(7);
  return ip;
}

/** `[v6]` → `v6`. */
export function unbracket(host: string): string {
  return host.length > 1 && host.charCodeAt(0) === 91 && host.charCodeAt(host.length - 1) === 93
    ? host.slice(1, -1)
    : host;
}

/** `v6` → `[v6]` for sent-by / URIs. */
export function bracket(host: string): string {
  return host.indexOf(':') >= 0 && host.charCodeAt(0) !== 91 ? '[' + host + ']' : host;
}
