/**
 * The RTP relay seen from the B2BUA: one `CallMedia` per B2BUA, a relay session per call (keyed by the B2BUA's
 * call object), the relay policy, and SDP rewriting at the few points where the B2BUA hands an SDP from one leg
 * to the other. Calls that are not relayed pass every body through untouched.
 *
 * Options: `rtprelay` off | nat | always (default nat), `rtpportmin`/`rtpportmax` (20000/30000), `rtpaddress`
 * (written into SDP; default the local address the caller's INVITE arrived on, for a wildcard bind the host's
 * first non-internal IPv4), `rtptimeout` (60 s; 0 disables).
 * Policy `nat`: relay when the caller's Contact host or SDP connection address is private (RFC 1918, RFC 6598,
 * link-local, IPv6 ULA) and differs from the source address of its INVITE, or when a registered callee's Contact
 * host is private and differs from the source address of its REGISTER. Gateways are taken as reachable (not behind
 * NAT). The port range is read when the first call is relayed (a change needs a restart); rtprelay, rtpaddress and
 * rtptimeout are read per call. When the range is exhausted (or invalid) the call goes on with media end to end
 * (logged as a warning). One relay stream per m= line of the caller's offer (one for a delayed offer); streams
 * beyond those keep their own port and c= line. RTCP is not relayed (a=rtcp lines are kept verbatim).
 */
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { DomainServices } from '../../domain/deps.js';
import { getHeader, type SipRequest } from '../message/index.js';
import type { SipSource } from '../stack.js';
import { RtpRelay, type RelaySession, type Side } from './relay.js';
import { looksLikeSdp, parseSdp } from './sdp.js';

export { RtpRelay, RelaySession } from './relay.js';

/** RFC 1918, RFC 6598 (carrier NAT), link-local and IPv6 ULA / link-local addresses. */
export function isPrivateAddress(ip: string): boolean {
  const v = isIP(ip);
  if (v === 4) {
    const [a, b] = ip.split('.').map(Number) as [number, number];
    return (
      a === 10 ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 100 && b >= 64 && b <= 127) ||
      (a === 169 && b === 254)
    );
  }
  if (v === 6) {
    const l = ip.toLowerCase();
    return l.startsWith('fc') || l.startsWith('fd') || l.startsWith('fe80:');
  }
  return false;
}

/** Host part of a SIP URI or name-addr (`<sip:user@host:port;…>` → host). */
export function uriHost(uri: string): string {
  const m = /sips?:(?:[^@>;]*@)?(\[[^\]]+\]|[^:;>?\s]+)/i.exec(uri);
  if (!m) return '';
  return m[1]!.replace(/^\[|\]$/g, '');
}

/** Whether a party looks NATed: its Contact / SDP address is private and not the address its SIP came from. */
export function behindNat(sourceIp: string, addresses: string[]): boolean {
  return addresses.some((a) => a !== '' && a !== sourceIp && isPrivateAddress(a));
}

export interface CalleeHint {
  contact: string;
  srcIp: string;
}

export class CallMedia {
  private relay?: RtpRelay;
  private readonly sessions = new WeakMap<object, RelaySession>();
  private readonly gone = new WeakSet<object>();

  constructor(private readonly services: DomainServices) {}

  private relayFor(): RtpRelay {
    const o = this.services.config.options;
    if (!this.relay)
      this.relay = new RtpRelay({
        min: o.rtpportmin,
        max: o.rtpportmax,
        bindAddr: relayBindAddr(o.sipbindaddr),
        timeoutSeconds: o.rtptimeout,
      });
    else this.relay.setTimeoutSeconds(o.rtptimeout);
    return this.relay;
  }

  /** Whether `call` is relayed by the current policy. */
  wants(aReq: SipRequest, aSrc: SipSource, callees: CalleeHint[]): boolean {
    const mode = this.services.config.options.rtprelay;
    if (mode === 'always') return true;
    if (mode === 'off') return false;
    const contact = aReq.core?.contact[0]?.uri.raw ?? getHeader(aReq, 'Contact') ?? '';
    const sdpAddrs = looksLikeSdp(aReq.body, getHeader(aReq, 'Content-Type'))
      ? parseSdp(aReq.body).map((s) => s.address)
      : [];
    if (behindNat(aSrc.ip, [uriHost(contact), ...sdpAddrs])) return true;
    return callees.some((c) => behindNat(c.srcIp, [uriHost(c.contact)]));
  }

  /**
   * Decides for a new call (before its B legs are dialled) and opens its relay session (one stream per m= line
   * of the caller's offer; one for a delayed offer). Idempotent per call.
   */
  async prepare(call: object, aReq: SipRequest, aSrc: SipSource, callees: CalleeHint[] = []): Promise<void> {
    if (this.sessions.has(call) || this.gone.has(call)) return;
    if (!this.wants(aReq, aSrc, callees)) return;
    const n = looksLikeSdp(aReq.body, getHeader(aReq, 'Content-Type')) ? parseSdp(aReq.body).length : 1;
    await this.open(call, aSrc.localIp, n);
  }

  /**
   * The same decision for a call whose parties voxswitch called itself (callback/p2p): relayed with
   * rtprelay=always, or with nat when a party's Contact or SDP address is private and differs from the address its
   * signalling goes to. `offer` is the first session description (its m= lines are the streams).
   */
  async prepareParties(
    call: object,
    parties: Array<{ signalIp: string; contact: string; sdp?: Buffer }>,
    offer: Buffer,
    localIp: string | undefined,
  ): Promise<void> {
    if (this.sessions.has(call) || this.gone.has(call)) return;
    const mode = this.services.config.options.rtprelay;
    if (mode === 'off') return;
    const behind = (p: (typeof parties)[0]) =>
      behindNat(p.signalIp, [uriHost(p.contact), ...(p.sdp ? parseSdp(p.sdp).map((x) => x.address) : [])]);
    if (mode !== 'always' && !parties.some(behind)) return;
    await this.open(call, localIp, Math.max(1, parseSdp(offer).length));
  }

  private async open(call: object, localIp: string | undefined, streams: number): Promise<void> {
    const address = this.services.config.options.rtpaddress || localMediaAddress(localIp);
    let s: RelaySession;
    try {
      s = await this.relayFor().open(address.replace(/^::ffff:/, ''), Math.max(1, streams));
    } catch (e) {
      this.services.log.warn(
        { err: String((e as Error)?.message ?? e) },
        'RTP relay not available for this call: media end to end',
      );
      return;
    }
    if (this.gone.has(call)) return s.release(); // the call ended while the ports were bound
    this.sessions.set(call, s);
  }

  /** The body to hand on when `from` sent an SDP (unchanged when the call is not relayed or it is not SDP). */
  sdp(call: object, from: Side, body: Buffer, contentType?: string): Buffer {
    const s = this.sessions.get(call);
    if (!s || !looksLikeSdp(body, contentType)) return body;
    return s.sdp(from, body);
  }

  /** Call connected: starts the RTP timeout (relayed calls only). */
  connected(call: object, onTimeout: () => void): void {
    this.sessions.get(call)?.arm(onTimeout);
  }

  session(call: object): RelaySession | undefined {
    return this.sessions.get(call);
  }

  /** Call ended: frees its ports. */
  release(call: object): void {
    this.gone.add(call);
    const s = this.sessions.get(call);
    if (!s) return;
    this.sessions.delete(call);
    s.release();
  }

  /**
   * A local media endpoint's RTP/RTCP pair from the relay's pool (one pool for every RTP port of the process),
   * for a socket owner that binds it itself (the conference mixer): the port, the address to bind and the address
   * to write into SDP. `release` returns the pair. Rejects when the range is exhausted.
   */
  async localPair(localIp: string | undefined): Promise<{ port: number; bindAddr: string; address: string }> {
    const relay = this.relayFor();
    const port = await relay.pool.reserve();
    const address = (this.services.config.options.rtpaddress || localMediaAddress(localIp)).replace(/^::ffff:/, '');
    return { port, bindAddr: relayBindAddr(this.services.config.options.sipbindaddr), address };
  }

  /** Returns a pair handed out by `localPair`. */
  releaseLocalPair(port: number): void {
    this.relay?.pool.unreserve(port);
  }

  /** Open relay sessions. */
  get size(): number {
    return this.relay?.size ?? 0;
  }

  close(): void {
    this.relay?.close();
  }
}

function relayBindAddr(sipBind: string): string {
  return sipBind && isIP(sipBind) ? sipBind : '0.0.0.0';
}

/** The SIP local address the INVITE arrived on; for a wildcard bind the first non-internal IPv4 of the host. */
export function localMediaAddress(localIp: string | undefined): string {
  const ip = (localIp ?? '').replace(/^::ffff:/, '');
  if (ip && ip !== '0.0.0.0' && ip !== '::') return ip;
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
