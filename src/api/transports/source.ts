/** Builds the Source of an HTTP/WebSocket request: address, transport, and whether a web page sent it. */
import type { IncomingMessage } from 'node:http';
import type { Source, TransportKind } from '../types.js';
import { normalizeIp } from '../../domain/security/ip.js';

/** Host header without port, lower case, IPv6 without brackets. */
export function hostOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const colon = h.lastIndexOf(':');
  return colon >= 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h;
}

/**
 * A request is from a web page when it carries Origin, Referer or Sec-Fetch-* headers, or names a Host that is
 * not this server (DNS rebinding). Such a request never gets trust from its source address.
 */
export function isBrowserRequest(req: IncomingMessage, ownHosts: Set<string>): boolean {
  const h = req.headers;
  if (
    h.origin !== undefined ||
    h.referer !== undefined ||
    h['sec-fetch-site'] !== undefined ||
    h['sec-fetch-dest'] !== undefined ||
    h['sec-fetch-user'] !== undefined
  )
    return true;
  const host = hostOf(h.host);
  return host !== undefined && !ownHosts.has(host);
}

export function httpSource(req: IncomingMessage, kind: TransportKind, ownHosts: Set<string>): Source {
  return {
    transport: kind,
    ip: normalizeIp(req.socket.remoteAddress ?? ''),
    port: req.socket.remotePort ?? 0,
    browser: isBrowserRequest(req, ownHosts),
  };
}
