/** Small helpers shared by the SIP service handlers. */
import {
  getHeader,
  getParam,
  parseDeltaSeconds,
  unescapeUriComponent,
  type SipRequest,
  type SipResponse,
  type Uri,
} from '../message/index.js';
import type { ClientTransaction, SipSource, SipTarget } from '../stack.js';

/** The user part of a sip:/sips: URI, unescaped; null for other URIs or no user. */
export function uriUser(u: Uri | undefined | null): string | null {
  if (!u || u.kind !== 'sip' || u.user === null) return null;
  return unescapeUriComponent(u.user);
}

/** Host of a sip URI without brackets/port, or null. */
export function uriHost(u: Uri | undefined | null): string | null {
  if (!u || u.kind !== 'sip') return null;
  return u.host;
}

/** Where to send a request to a peer we heard from (its source address: NAT-safe, reusing the connection). */
export function targetOf(src: Pick<SipSource, 'transport' | 'ip' | 'port' | 'connId'>): SipTarget {
  return { transport: src.transport, host: src.ip, port: src.port, connId: src.connId };
}

/** The Expires header value in seconds; undefined when absent, -1 when malformed. */
export function expiresHeader(req: SipRequest): number | undefined {
  const v = getHeader(req, 'Expires');
  if (v === undefined) return undefined;
  return parseDeltaSeconds(v.trim());
}

/** `expires` parameter of a Contact value; undefined when absent, -1 when malformed. */
export function expiresParam(params: Parameters<typeof getParam>[0]): number | undefined {
  const v = getParam(params, 'expires');
  if (v === undefined) return undefined;
  if (v === null) return -1;
  return parseDeltaSeconds(v);
}

/** q parameter (0..1, default 1); NaN when malformed. */
export function qParam(params: Parameters<typeof getParam>[0]): number {
  const v = getParam(params, 'q');
  if (v === undefined) return 1;
  if (v === null || !/^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(v)) return NaN;
  return Number(v);
}

/** Resolves with the final response of a client transaction, or null on timeout / transport error / safety timeout. */
export function finalResponse(ct: ClientTransaction, safetyMs = 40_000): Promise<SipResponse | null> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: SipResponse | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => finish(null), safetyMs);
    timer.unref();
    ct.on('final', (res: SipResponse) => finish(res));
    ct.on('timeout', () => finish(null));
    ct.on('transport-error', () => finish(null));
  });
}

/** Text for a display name in a From header (quoted-string). */
export function quoteDisplay(s: string): string {
  return '"' + s.replace(/[\\"]/g, (c) => '\\' + c).replace(/[\r\n]/g, ' ') + '"';
}
