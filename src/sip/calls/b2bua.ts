/**
 * Back-to-back user agent (issue 5): every call is two dialogs — A (caller ↔ server) and B (server ↔ callee) —
 * with their own Call-IDs, tags and CSeqs. The server stays in the signalling path so it can end either leg,
 * enforce maxduration and keep its own record. Media go end to end by default
 * (SDP unchanged); the optional RTP relay (src/sip/media, option rtprelay) rewrites it at the lines marked "RTP relay".
 *
 * Flow: INVITE from a registered user (digest, 407 challenge) or, without credentials, from a gateway's inbound_ip
 * (trusted) → RoutingService.route (with the caller's reserved credit) → credit reservation (LiveCalls.reserve;
 * refusals 402/404/… answered with a CDR of cost 0) → B leg(s): every registered contact of the callee in parallel
 * (first 2xx wins, the other forks get CANCEL), or the gateways in order with failover on 5xx/408/480/486/timeout/
 * transport error (other 4xx and 6xx stop); a gateway's 401/407 is answered once with its digest credentials →
 * provisional answers (with early SDP) and the final answer relayed to A → on 2xx: 200 to A with B's SDP, ACK B
 * (at once when A sent an offer; with A's ACK body for a delayed offer), status 4 for both parties, the maxduration
 * timer → BYE from either side (or the maxduration cut / disccall / max call age: BYE both legs) →
 * LiveCalls.finish writes the one CDR (leg ''), charged once. CANCEL from A cancels the forks (487 to A).
 * re-INVITEs (hold, codec change, refresh) are passed through to the other leg and its answer back.
 *
 * Billing account: the caller; for a call from a gateway to a DID, the called user (a free on-net call). On-net
 * user-to-user calls are free (a zero rate in the payer's currency; CDR reason "normal …").
 * Forwarding (callforward): `always` before ringing, `busy` when every device answered 486/600, `noanswer` after
 * `noAnswerSeconds` of ringing or when the user has no registered device. The forwarded leg is a new call billed to
 * the FORWARDING user at their rate (route "gw:<name> fwd:<user>" or "user:<name>"); the caller's first attempt is
 * closed with a CDR of cost 0 and reason "forwarded to <target>". One level of forwarding only (no loops).
 *
 * Timers: a B leg without any response for `legTimeoutMs` (5 s) fails over / fails with 408; ringing longer than
 * `ringTimeoutSeconds` (120 s) → 408. A caller that vanishes (no BYE, no RTP checks here) is covered by the max call
 * age: every call's maxduration is capped at `maxCallSeconds` (default 2 h) and it is then ended with BYE on both legs
 * (CDR reason "max call age reached"); a caller that never ACKs our 200 is ended after 32 s. RFC 4028 session timers
 * (./sessiontimer.ts, options sessionexpires/minse) end a call whose leg is not refreshed: BYE both legs, CDR reason
 * "session timer expired".
 */
import { createHash } from 'node:crypto';
import {
  createResponse,
  generateCallId,
  generateTag,
  getHeader,
  getHeaders,
  type SipHeader,
  type SipRequest,
  type SipResponse,
} from '../message/index.js';
import type { ClientTransaction, ServerTransaction, SipSource, SipTarget, SipTransport } from '../stack.js';
import type { SipServer, SipStackLike } from '../server.js';
import type { DomainServices } from '../../domain/deps.js';
import type { AuthUser, User } from '../../domain/accounts/users.js';
import type { Rate } from '../../domain/rating/rate.js';
import type { RouteDecision, RouteRequest, GatewayCandidate, Gateway } from '../../domain/routing/service.js';
import { LiveCalls, liveCallsFor } from '../../domain/calls/livecalls.js';
import { digestResponse, fastTag, ha1, parseDigestHeader } from '../services/digest.js';
import { targetOf, uriUser } from '../services/util.js';
import { SessionTimers, bodyOf, sentRequest, type DialogLeg } from './sessiontimer.js';
import { inDialogHeaders } from '../dialog/headers.js';
import { CallMedia } from '../media/index.js'; // RTP relay (src/sip/media)

export interface Router {
  route(r: RouteRequest): Promise<RouteDecision>;
  gatewayForIp(ip: string): Promise<Gateway | undefined>;
}

export interface B2buaOptions {
  /** seconds before the `noanswer` forward rule applies (default 20) */
  noAnswerSeconds?: number;
  /** cap of every call (max call age), seconds; default 7200 */
  maxCallSeconds?: number;
  /** how long a B leg may stay without any response before failing over (ms, default 5000) */
  legTimeoutMs?: number;
  /** how long a B leg may ring (after a provisional response) without a final answer, seconds (default 120) */
  ringTimeoutSeconds?: number;
}

/** A call leg: the dialog fields (remoteTarget = the remote Contact; invite = the INVITE sent on leg B) plus call state. */
interface Leg extends DialogLeg {
  ct?: ClientTransaction;
  done?: boolean;
  gateway?: GatewayCandidate;
  authTried?: boolean;
}

interface Call {
  id: string;
  payer: number;
  callerName: string;
  calleeName: string;
  parties: string[];
  aReq: SipRequest;
  aTx: ServerTransaction;
  aSrc: SipSource;
  a: Leg;
  /** B legs being tried (forks) and the one answered */
  forks: Leg[];
  b?: Leg;
  state: 'routing' | 'calling' | 'connected' | 'ended';
  /** B's ACK waits for A's ACK (delayed offer) */
  pendingAck?: boolean;
  bAck?: SipRequest;
  noAnswer?: NodeJS.Timeout;
  forwarded?: boolean;
  busyFwd?: string;
  noAnswerFwd?: string;
  forwarder?: User | AuthUser;
  answered?: boolean;
  aAcked?: boolean;
  busy?: boolean;
}

const FAILOVER = new Set([408, 480, 486]);

export class B2bua {
  readonly live: LiveCalls;
  private readonly byCallId = new Map<string, { call: Call; side: 'a' | 'b' }>();
  private readonly o: Required<B2buaOptions>;
  /** RFC 4028 session timers of the legs (options sessionexpires / minse) */
  readonly timers: SessionTimers;
  /** RTP relay (src/sip/media): per-call relay sessions, SDP rewriting, RTP timeout */
  readonly media: CallMedia;

  constructor(
    private readonly services: DomainServices,
    private readonly sip: SipServer,
    private readonly stack: SipStackLike,
    private readonly router: Router,
    opts: B2buaOptions = {},
  ) {
    this.o = {
      noAnswerSeconds: opts.noAnswerSeconds ?? 20,
      maxCallSeconds: opts.maxCallSeconds ?? 7200,
      legTimeoutMs: opts.legTimeoutMs ?? 5000,
      ringTimeoutSeconds: opts.ringTimeoutSeconds ?? 120,
    };
    this.live = liveCallsFor(services, { maxCallSeconds: this.o.maxCallSeconds });
    this.timers = new SessionTimers(
      stack,
      () => ({ sessionExpires: services.config.options.sessionexpires, minSe: services.config.options.minse }),
      (t) => this.contactFor(t),
      { log: services.log },
    );
    this.media = new CallMedia(services); // RTP relay
  }

  /** Takes INVITE/BYE/CANCEL over and the 2xx ACKs; call after sip.start(). */
  start(): void {
    this.sip.setMethodHandler('INVITE', (req, tx, src) => this.onInvite(req, tx, src));
    this.sip.setMethodHandler('BYE', (req, tx, src) => this.onBye(req, tx, src));
    this.sip.setMethodHandler('CANCEL', (req, tx, src) => this.onCancel(req, tx, src));
    this.stack.onAck((req, src) => this.onAck(req, src));
    this.live.start();
  }

  /** Hangs up every call (server stop): BYE both legs, CDRs written. */
  async stop(): Promise<void> {
    const calls = new Set([...this.byCallId.values()].map((x) => x.call));
    await Promise.allSettled([...calls].map((c) => this.end(c, 'server shutdown', true)));
    this.live.stop();
  }

  /** Closes the calls a crash left in tb_livecalls (billing them once). */
  recover(): Promise<{ closed: number; charged: number }> {
    return this.live.recover();
  }

  /** Live calls for `info`. */
  liveCalls(): Array<{
    callid: string;
    caller: string;
    callee: string;
    state: string;
    start: number;
    connect: number | null;
    maxduration: number;
    route: string;
  }> {
    return this.live.list().map((c) => ({
      callid: c.key,
      caller: c.caller,
      callee: c.callee,
      state: c.state,
      start: c.startAt,
      connect: c.connectAt,
      maxduration: c.maxduration,
      route: c.route,
    }));
  }

  size(): number {
    return this.byCallId.size;
  }

  // ------------------------------------------------------------------ helpers

  private respond(
    tx: ServerTransaction,
    req: SipRequest,
    status: number,
    reason?: string,
    headers: SipHeader[] = [],
    body?: { type: string; data: Buffer },
    toTag?: string,
  ): void {
    try {
      tx.respond(
        createResponse(req, status, reason, {
          headers: [{ name: 'Server', value: `voxswitch/${this.services.version}` }, ...headers],
          body: body?.data,
          contentType: body?.type,
          toTag: toTag ?? fastTag(),
        }),
      );
    } catch (e) {
      this.services.log.debug({ err: String(e) }, 'SIP response not sent');
    }
  }

  private contactFor(t: SipTransport): string {
    const l = this.stack.localAddress(t);
    const host = l ? (l.host.includes(':') && !l.host.startsWith('[') ? `[${l.host}]` : l.host) : '127.0.0.1';
    return `<sip:${host}:${l?.port ?? 5060}${t === 'udp' ? '' : `;transport=${t}`}>`;
  }

  private domain(t: SipTransport): string {
    const l = this.stack.localAddress(t);
    return (
      this.services.config.options.sipdomain || (l ? (l.host.includes(':') ? `[${l.host}]` : l.host) : '127.0.0.1')
    );
  }

  /** Digest check for INVITE (407 challenge); answers itself and returns null when not authenticated. */
  private async authenticate(req: SipRequest, tx: ServerTransaction, src: SipSource): Promise<AuthUser | null> {
    const realm = this.sip.realm(req, src);
    const creds = [...getHeaders(req, 'Proxy-Authorization'), ...getHeaders(req, 'Authorization')];
    let user: AuthUser | null = null;
    const r = creds.length
      ? await this.sip.digest.verify(creds, realm, req.method, req.uri, async (name) => {
          const u = name ? await this.services.users.forAuth(name) : null;
          user = u && u.username === name && u.enabled ? u : null;
          return user?.password ?? null;
        })
      : ({ ok: false, why: 'missing', detail: '' } as const);
    if (r.ok && user) return user;
    if (!r.ok && r.why === 'bad') {
      void this.services.bans.recordFailure(src.ip, 'SIP').catch(() => undefined);
      this.respond(tx, req, 403, 'Forbidden');
      return null;
    }
    const stale = !r.ok && r.why === 'stale';
    this.respond(
      tx,
      req,
      407,
      undefined,
      this.sip.digest.challenges(realm, stale).map((value) => ({ name: 'Proxy-Authenticate', value })),
    );
    return null;
  }

  private setState(c: Call, s: 3 | 4 | null): void {
    for (const p of c.parties) this.sip.setCallState(p, s);
  }

  /** A zero rate in the payer's currency: on-net calls are free but still recorded as "normal". */
  private async freeRate(userId: number): Promise<Rate | undefined> {
    const b = await this.services.ledger.balance(userId);
    if (!b) return undefined;
    return {
      id: 0,
      planId: 0,
      prefix: '',
      destination: 'on-net',
      price: 0,
      connectfee: 0,
      minduration: 0,
      increment: 1,
      currency: b.currency,
      validFrom: null,
      validTo: null,
    };
  }

  // ------------------------------------------------------------------ INVITE

  private async onInvite(req: SipRequest, tx: ServerTransaction, src: SipSource): Promise<void> {
    const core = req.core!;
    if (core.to?.tag) return this.onReInvite(req, tx, src);
    const tooSmall = this.timers.tooSmall(req);
    if (tooSmall) return this.respond(tx, req, 422, 'Session Interval Too Small', tooSmall);
    // a request with credentials is a user's, even from a gateway's address; without, a gateway's inbound_ip is trusted
    const hasCreds =
      getHeader(req, 'Proxy-Authorization') !== undefined || getHeader(req, 'Authorization') !== undefined;
    const gw = hasCreds ? undefined : await this.router.gatewayForIp(src.ip).catch(() => undefined);
    let user: AuthUser | null = null;
    if (!gw) {
      user = await this.authenticate(req, tx, src);
      if (!user) return;
    }
    if (tx.cancelled) return this.respond(tx, req, 487, 'Request Terminated');
    const called = uriUser(req.ruri) ?? uriUser(core.to?.uri) ?? '';
    const callerName = user?.username ?? uriUser(core.from?.uri) ?? '';
    const id = generateCallId();
    const a: Leg = {
      callId: core.callId!,
      localTag: generateTag(),
      remoteTag: core.from?.tag ?? null,
      localUri: core.to!.uri.raw,
      remoteUri: core.from!.uri.raw,
      remoteTarget: core.contact[0]?.uri.raw ?? core.from!.uri.raw,
      routes: getHeaders(req, 'Record-Route'),
      target: targetOf(src),
      cseq: 0,
    };
    const call: Call = {
      id,
      payer: user?.id ?? 0,
      callerName,
      calleeName: called,
      parties: user ? [user.username] : [],
      aReq: req,
      aTx: tx,
      aSrc: src,
      a,
      forks: [],
      state: 'routing',
    };
    this.byCallId.set(a.callId, { call, side: 'a' });
    try {
      await this.routeAndDial(call, called, user ?? undefined, src.ip);
    } catch (e) {
      this.services.log.warn({ err: String((e as Error)?.message ?? e), callid: id }, 'call setup failed');
      if (call.state !== 'ended') {
        this.respond(tx, req, 500, 'Server Internal Error', [], undefined, a.localTag);
        await this.end(call, 'setup failed', false);
      }
    }
  }

  private async routeAndDial(
    call: Call,
    called: string,
    user: User | undefined,
    fromIp: string,
    forwardedBy?: User,
  ): Promise<void> {
    const payer = forwardedBy ?? user;
    const d = await this.router.route({
      caller: call.callerName,
      called,
      fromIp,
      user: payer,
      reservedCredit: payer ? this.live.reservedFor(payer.id) : 0,
    });
    if (call.state === 'ended') return;
    if (d.kind === 'reject') {
      this.live.countAttempt();
      await this.live.recordRefusal(
        { callid: call.id, userId: call.payer, caller: call.callerName, callee: called, route: 'rejected' },
        `${d.status} ${d.reason}`,
      );
      return this.fail(call, d.status, d.reason, `${d.status} ${d.reason}`, true);
    }
    if (d.kind === 'user') {
      const callee = d.user;
      const fwd = d.forward ?? {};
      if (fwd.always && !call.forwarded) return this.forward(call, callee, fwd.always);
      if (!call.payer) call.payer = callee.id; // DID inbound from a gateway: the called user's (free) call
      if (!call.parties.includes(callee.username)) call.parties.push(callee.username);
      call.calleeName = callee.username;
      call.busyFwd = call.forwarded ? undefined : fwd.busy;
      call.noAnswerFwd = call.forwarded ? undefined : fwd.noanswer;
      call.forwarder = callee;
      const bindings = this.sip.location.lookup(callee.username);
      if (!bindings.length) {
        if (call.noAnswerFwd) return this.forward(call, callee, call.noAnswerFwd);
        this.live.countAttempt();
        await this.live.recordRefusal(
          {
            callid: call.id,
            userId: call.payer,
            caller: call.callerName,
            callee: callee.username,
            route: `user:${callee.username}`,
            rate: await this.freeRate(call.payer),
          },
          'callee offline',
        );
        return this.fail(call, 480, 'Temporarily Unavailable', 'callee offline', true);
      }
      if (!(await this.reserve(call, callee.username, `user:${callee.username}`, await this.freeRate(call.payer))))
        return;
      await this.media.prepare(
        call,
        call.aReq,
        call.aSrc,
        bindings.map((b) => ({ contact: b.contact, srcIp: b.srcIp })),
      ); // RTP relay
      if (call.state !== 'calling') return;
      this.setState(call, 3);
      const from = call.callerName;
      for (const b of bindings) {
        this.dial(call, {
          uri: b.contact,
          to: `sip:${escUser(callee.username)}@${this.domain(b.transport)}`,
          target: { transport: b.transport, host: b.srcIp, port: b.srcPort, connId: b.connId },
          from,
        });
      }
      if (call.noAnswerFwd) {
        const target = call.noAnswerFwd;
        call.noAnswer = setTimeout(() => {
          if (call.state !== 'calling' || call.b) return;
          for (const f of call.forks) this.cancelLeg(f);
          call.forks = [];
          void this.forward(call, callee, target).catch(() => undefined);
        }, this.o.noAnswerSeconds * 1000);
        call.noAnswer.unref();
      }
      return;
    }
    // gateways
    if (!call.payer) return this.fail(call, 403, 'Forbidden', 'no paying account', true);
    if (!(await this.reserve(call, d.number, forwardedBy ? `fwd:${forwardedBy.username}` : 'gateway', d.rate))) return;
    await this.media.prepare(call, call.aReq, call.aSrc); // RTP relay
    if (call.state !== 'calling') return;
    this.setState(call, 3);
    void this.dialGateways(call, d.candidates);
  }

  private async forward(call: Call, by: User, target: string): Promise<void> {
    call.forwarded = true;
    if (call.noAnswer) clearTimeout(call.noAnswer);
    // a running reservation (busy / no answer) is released; the forwarded leg gets its own, on the forwarder's account
    if (this.live.get(call.id)) await this.live.finish(call.id, '', { reason: `forwarded to ${target}` });
    call.id = generateCallId();
    this.setState(call, null);
    call.parties = call.parties.filter((p) => p !== by.username);
    const paysForwarder = by;
    call.payer = paysForwarder.id;
    call.state = 'routing';
    return this.routeAndDial(call, target, undefined, '', paysForwarder);
  }

  private async reserve(call: Call, callee: string, route: string, rate: Rate | undefined): Promise<boolean> {
    const r = await this.live.reserve({
      callid: call.id,
      userId: call.payer,
      caller: call.callerName,
      callee,
      route,
      rate,
      parties: call.parties,
    });
    if (call.state === 'ended') {
      if (r.ok) await this.live.finish(call.id, '', { reason: 'cancelled' });
      return false;
    }
    if (!r.ok) {
      this.fail(call, r.status, r.status === 402 ? 'Payment Required' : r.reason, r.reason, false);
      return false;
    }
    this.live.onHangup(call.id, '', (reason) => void this.end(call, reason, true));
    call.state = 'calling';
    return true;
  }

  /** Final failure towards A (no CDR here: the caller wrote it or will by finish). */
  private fail(call: Call, status: number, reason: string, cdrReason: string, refused: boolean): void {
    this.respond(call.aTx, call.aReq, status, reason, [], undefined, call.a.localTag);
    void this.end(call, cdrReason, false, refused);
  }

  private dial(
    call: Call,
    t: { uri: string; to: string; target: SipTarget; from: string; gateway?: GatewayCandidate },
  ): Leg {
    const req = call.aReq;
    const tag = generateTag();
    const fromUri = `sip:${escUser(t.from)}@${this.domain(t.target.transport)}`;
    const leg: Leg = {
      callId: generateCallId(),
      localTag: tag,
      remoteTag: null,
      localUri: fromUri,
      remoteUri: t.to,
      remoteTarget: t.uri,
      routes: [],
      target: t.target,
      cseq: 1,
      gateway: t.gateway,
    };
    const headers: SipHeader[] = [
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: `<${fromUri}>;tag=${tag}` },
      { name: 'To', value: `<${t.to}>` },
      { name: 'Call-ID', value: leg.callId },
      { name: 'CSeq', value: '1 INVITE' },
      { name: 'Contact', value: this.contactFor(t.target.transport) },
      { name: 'Allow', value: 'INVITE, ACK, CANCEL, BYE, OPTIONS' },
      ...this.timers.offer(),
    ];
    const ct = getHeader(req, 'Content-Type');
    const body = this.media.sdp(call, 'a', req.body, ct); // RTP relay: the offer to B points at the relay
    if (body.length && ct) headers.push({ name: 'Content-Type', value: ct });
    headers.push({ name: 'Content-Length', value: String(body.length) });
    leg.invite = { type: 'request', method: 'INVITE', uri: t.uri, version: 'SIP/2.0', headers, body };
    call.forks.push(leg);
    this.byCallId.set(leg.callId, { call, side: 'b' });
    this.send(call, leg);
    return leg;
  }

  /** Sends (or re-sends with credentials) the INVITE of a B leg and follows its answers. */
  private send(call: Call, leg: Leg): void {
    let ct: ClientTransaction;
    try {
      ct = this.stack.request(leg.invite!, leg.target);
    } catch (e) {
      this.services.log.warn({ err: String(e) }, 'B leg INVITE not sent');
      setImmediate(() => this.legFailed(call, leg, 503, 'Service Unavailable'));
      return;
    }
    leg.ct = ct;
    // no response at all within legTimeoutMs → next gateway / failure; ringing longer than ringTimeoutSeconds → 408
    const expire = () => {
      if (leg.done) return;
      try {
        ct.cancel?.();
      } catch {
        /* gone */
      }
      this.legFailed(call, leg, 408, 'Request Timeout');
    };
    let guard = setTimeout(expire, this.o.legTimeoutMs);
    guard.unref();
    let ringing = false;
    ct.on('provisional', (res: SipResponse) => {
      if (!ringing) {
        ringing = true;
        clearTimeout(guard);
        guard = setTimeout(expire, this.o.ringTimeoutSeconds * 1000);
        guard.unref();
      }
      this.onProvisional(call, leg, res);
    });
    ct.on('final', (res: SipResponse) => {
      clearTimeout(guard);
      this.onFinal(call, leg, res);
    });
    ct.on('timeout', () => {
      clearTimeout(guard);
      this.legFailed(call, leg, 408, 'Request Timeout');
    });
    ct.on('transport-error', () => {
      clearTimeout(guard);
      this.legFailed(call, leg, 503, 'Service Unavailable');
    });
  }

  private onProvisional(call: Call, leg: Leg, res: SipResponse): void {
    if (call.state !== 'calling' || leg.done || res.status === 100) return;
    this.live.setState(call.id, '', 'ringing');
    const ct = getHeader(res, 'Content-Type');
    this.respond(
      call.aTx,
      call.aReq,
      res.status,
      res.reason,
      [{ name: 'Contact', value: this.contactFor(call.aSrc.transport) }],
      res.body.length && ct ? { type: ct, data: this.media.sdp(call, 'b', res.body, ct) /* RTP relay */ } : undefined,
      call.a.localTag,
    );
  }

  private onFinal(call: Call, leg: Leg, res: SipResponse): void {
    if (res.status >= 200 && res.status < 300) return this.onAnswer(call, leg, res);
    if (res.status === 422 && call.state === 'calling' && this.timers.retry422(leg, res)) return this.send(call, leg);
    if (
      (res.status === 401 || res.status === 407) &&
      leg.gateway?.username &&
      !leg.authTried &&
      call.state === 'calling'
    ) {
      const h = getHeader(res, res.status === 401 ? 'WWW-Authenticate' : 'Proxy-Authenticate');
      const auth = h ? digestAnswer(h, leg.gateway.username, leg.gateway.password, 'INVITE', leg.invite!.uri) : null;
      if (auth) {
        leg.authTried = true;
        leg.cseq++;
        const headers = leg.invite!.headers.map((x) =>
          x.name === 'CSeq' ? { name: 'CSeq', value: `${leg.cseq} INVITE` } : x,
        );
        headers.splice(headers.length - 1, 0, {
          name: res.status === 401 ? 'Authorization' : 'Proxy-Authorization',
          value: auth,
        });
        leg.invite = { ...leg.invite!, headers };
        return this.send(call, leg);
      }
    }
    this.legFailed(call, leg, res.status, res.reason);
  }

  private onAnswer(call: Call, leg: Leg, res: SipResponse): void {
    const to = res.core?.to;
    const contact = res.core?.contact[0]?.uri.raw;
    if (call.b && call.b !== leg) {
      // another fork answered too: ACK and BYE it
      const extra = {
        ...leg,
        remoteTag: to?.tag ?? null,
        remoteTarget: contact ?? leg.remoteTarget,
        routes: getHeaders(res, 'Record-Route').reverse(),
      };
      this.ackB(extra, Buffer.alloc(0));
      this.bye(extra);
      return;
    }
    if (call.b === leg) {
      // 2xx retransmission: ACK again
      if (call.bAck) this.stack.request(call.bAck, leg.target);
      return;
    }
    if (call.state !== 'calling') {
      // answered after A cancelled: ACK + BYE
      leg.remoteTag = to?.tag ?? null;
      leg.remoteTarget = contact ?? leg.remoteTarget;
      leg.routes = getHeaders(res, 'Record-Route').reverse();
      this.ackB(leg, Buffer.alloc(0));
      this.bye(leg);
      return;
    }
    leg.done = true;
    leg.remoteTag = to?.tag ?? null;
    leg.remoteTarget = contact ?? leg.remoteTarget;
    leg.routes = getHeaders(res, 'Record-Route').reverse();
    call.b = leg;
    call.state = 'connected';
    call.answered = true;
    if (call.noAnswer) clearTimeout(call.noAnswer);
    for (const f of call.forks) if (f !== leg) this.cancelLeg(f);
    call.forks = [leg];
    const aOffered = call.aReq.body.length > 0;
    if (aOffered) call.bAck = this.ackB(leg, Buffer.alloc(0));
    else call.pendingAck = true;
    // A must ACK our 2xx (the stack retransmits it meanwhile); no ACK within 32 s (timer L) ends the call
    const ackGuard = setTimeout(() => {
      if (!call.aAcked && call.state === 'connected') void this.end(call, 'no ACK from caller', true);
    }, 32_000);
    ackGuard.unref();
    const ct = getHeader(res, 'Content-Type');
    // RFC 4028 session timers of both legs; expiry (e.g. a vanished caller) ends the call
    const stHeaders = this.timers.connect(
      call.a,
      call.aReq,
      leg,
      res,
      {
        a: () => (res.body.length && ct ? { type: ct, data: this.media.sdp(call, 'b', res.body, ct) } : undefined),
        b: () => bodyOf(call.bAck?.body.length ? call.bAck : leg.invite),
      },
      () => void this.end(call, 'session timer expired', true),
    );
    this.respond(
      call.aTx,
      call.aReq,
      200,
      'OK',
      [{ name: 'Contact', value: this.contactFor(call.aSrc.transport) }, ...stHeaders],
      res.body.length && ct ? { type: ct, data: this.media.sdp(call, 'b', res.body, ct) /* RTP relay */ } : undefined,
      call.a.localTag,
    );
    this.setState(call, 4);
    this.media.connected(call, () => void this.end(call, 'rtp timeout', true)); // RTP relay: RTP timeout
    void this.live
      .connected(call.id, '', {
        onMaxDuration: () =>
          void this.end(call, this.live.get(call.id)?.capped ? 'max call age reached' : 'maxduration reached', true),
      })
      .catch((e) => this.services.log.warn({ err: String(e) }, 'live call connect not persisted'));
  }

  private legFailed(call: Call, leg: Leg, status: number, reason: string): void {
    if (leg.done) return;
    leg.done = true;
    this.byCallId.delete(leg.callId);
    if (call.state !== 'calling') return;
    if (leg.gateway) {
      // failover to the next gateway
      const next = (call as Call & { gwQueue?: GatewayCandidate[] }).gwQueue;
      const stop = status >= 600 || (status >= 400 && status < 500 && !FAILOVER.has(status));
      if (!stop && next && next.length) {
        call.forks = call.forks.filter((f) => f !== leg);
        this.dialNextGateway(call, next);
        return;
      }
      return this.giveUp(call, status, reason);
    }
    if (status === 486 || status === 600) call.busy = true;
    if (call.forks.some((f) => !f.done)) return;
    // all forks failed: a busy answer from any device counts as busy (RFC 3261 §16.7 picks 6xx/486 over 408/480)
    if (call.busy) {
      status = 486;
      reason = 'Busy Here';
    }
    if (status === 486 && call.busyFwd && call.forwarder) {
      void this.forward(call, call.forwarder, call.busyFwd).catch(() => undefined);
      return;
    }
    this.giveUp(call, status, reason);
  }

  private giveUp(call: Call, status: number, reason: string): void {
    this.respond(call.aTx, call.aReq, status, reason, [], undefined, call.a.localTag);
    void this.end(call, `${status} ${reason}`, false);
  }

  private async dialGateways(call: Call, candidates: GatewayCandidate[]): Promise<void> {
    const queue = [...candidates];
    (call as Call & { gwQueue?: GatewayCandidate[] }).gwQueue = queue;
    if (!queue.length) return this.giveUp(call, 503, 'Service Unavailable');
    this.dialNextGateway(call, queue);
  }

  private dialNextGateway(call: Call, queue: GatewayCandidate[]): void {
    const g = queue.shift()!;
    const host = g.host.includes(':') && !g.host.startsWith('[') ? `[${g.host}]` : g.host;
    const uri = `sip:${escUser(g.number)}@${host}:${g.port}${g.transport === 'udp' ? '' : `;transport=${g.transport}`}`;
    // the route recorded in the CDR: the gateway tried last (and who forwarded, when the forwarding user pays)
    const route = `gw:${g.name}${call.forwarded && call.forwarder ? ` fwd:${call.forwarder.username}` : ''}`;
    this.live.setRoute(call.id, '', route);
    this.dial(call, {
      uri,
      to: uri,
      target: { transport: g.transport, host: g.host, port: g.port },
      from: call.callerName,
      gateway: g,
    });
  }

  private cancelLeg(leg: Leg): void {
    if (leg.done) return;
    leg.done = true;
    try {
      leg.ct?.cancel?.();
    } catch {
      /* gone */
    }
    // the CANCELled INVITE's 487 is absorbed by the transaction; keep the mapping a little for a racing 2xx
    setTimeout(() => this.byCallId.delete(leg.callId), 32_000).unref();
  }

  private ackB(leg: Leg, body: Buffer, contentType?: string): SipRequest {
    const headers = inDialogHeaders(leg, 'ACK', leg.cseq);
    if (body.length && contentType) headers.push({ name: 'Content-Type', value: contentType });
    headers.push({ name: 'Content-Length', value: String(body.length) });
    const ack: SipRequest = {
      type: 'request',
      method: 'ACK',
      uri: leg.remoteTarget,
      version: 'SIP/2.0',
      headers,
      body,
    };
    try {
      this.stack.request(ack, leg.target);
    } catch (e) {
      this.services.log.debug({ err: String(e) }, 'ACK not sent');
    }
    return ack;
  }

  /** In-dialog request on a leg (BYE, re-INVITE). side 'a' swaps the roles: we are the UAS of A's dialog. */
  private inDialog(
    leg: Leg,
    method: string,
    body?: { type: string; data: Buffer },
    extra: SipHeader[] = [],
  ): ClientTransaction | null {
    leg.cseq++;
    const headers = [...inDialogHeaders(leg, method, leg.cseq), ...extra];
    if (body) headers.push({ name: 'Content-Type', value: body.type });
    headers.push({ name: 'Content-Length', value: String(body?.data.length ?? 0) });
    const msg: SipRequest = {
      type: 'request',
      method,
      uri: leg.remoteTarget,
      version: 'SIP/2.0',
      headers,
      body: body?.data ?? Buffer.alloc(0),
    };
    try {
      const ct = this.stack.request(msg, leg.target);
      ct.on('final', () => undefined);
      ct.on('timeout', () => undefined);
      ct.on('transport-error', () => undefined);
      return ct;
    } catch (e) {
      this.services.log.debug({ err: String(e), method }, 'in-dialog request not sent');
      return null;
    }
  }

  private bye(leg: Leg): void {
    this.inDialog(leg, 'BYE');
  }

  /**
   * Ends a call: BYE to the legs still up (when `hangup`), CANCEL pending forks, state null, and the CDR (unless
   * `refused`: the refusal CDR is already written).
   */
  private async end(call: Call, reason: string, hangup: boolean, refused = false): Promise<void> {
    if (call.state === 'ended') return;
    const wasConnected = call.state === 'connected';
    call.state = 'ended';
    this.timers.disarm(call.a);
    this.timers.disarm(call.b);
    if (call.noAnswer) clearTimeout(call.noAnswer);
    if (hangup) {
      if (wasConnected) {
        if (call.b) this.bye(call.b);
        this.bye(call.a);
      } else {
        this.respond(call.aTx, call.aReq, 480, reason, [], undefined, call.a.localTag);
      }
    }
    for (const f of call.forks) if (f !== call.b) this.cancelLeg(f);
    this.setState(call, null);
    this.media.release(call); // RTP relay: free the ports
    this.byCallId.delete(call.a.callId);
    if (call.b) this.byCallId.delete(call.b.callId);
    if (!refused || this.live.get(call.id)) await this.live.finish(call.id, '', { reason });
  }

  // ------------------------------------------------------------------ ACK / BYE / CANCEL / re-INVITE

  private onAck(req: SipRequest, _src: SipSource): void {
    const m = this.byCallId.get(req.core?.callId ?? '');
    if (!m || m.side !== 'a') return;
    const call = m.call;
    call.aAcked = true;
    if (call.pendingAck && call.b) {
      call.pendingAck = false;
      call.bAck = this.ackB(
        call.b,
        this.media.sdp(call, 'a', req.body, getHeader(req, 'Content-Type')) /* RTP relay */,
        getHeader(req, 'Content-Type'),
      );
    }
  }

  private async onBye(req: SipRequest, tx: ServerTransaction, _src: SipSource): Promise<void> {
    const m = this.byCallId.get(req.core?.callId ?? '');
    if (!m) return this.respond(tx, req, 481, 'Call/Transaction Does Not Exist');
    this.respond(tx, req, 200, 'OK');
    const { call, side } = m;
    if (call.state === 'ended') return;
    if (side === 'a') {
      if (call.b) this.bye(call.b);
      if (call.state !== 'connected') {
        for (const f of call.forks) this.cancelLeg(f);
      }
    } else {
      this.bye(call.a);
    }
    const wasConnected = call.state === 'connected';
    // a BYE from A before the answer (RFC 3261 §15): its INVITE is ended with 487
    if (side === 'a' && !wasConnected)
      this.respond(call.aTx, call.aReq, 487, 'Request Terminated', [], undefined, call.a.localTag);
    await this.end(
      call,
      wasConnected ? (side === 'a' ? 'normal (caller hung up)' : 'normal (callee hung up)') : 'cancelled',
      false,
    );
  }

  private async onCancel(req: SipRequest, tx: ServerTransaction, _src: SipSource): Promise<void> {
    const inv = tx.cancels;
    const m = this.byCallId.get(req.core?.callId ?? '');
    if (!inv && !m) return this.respond(tx, req, 481, 'Call/Transaction Does Not Exist');
    this.respond(tx, req, 200, 'OK');
    if (!m || m.side !== 'a') return;
    const call = m.call;
    if (call.state === 'connected' || call.state === 'ended') return;
    this.respond(call.aTx, call.aReq, 487, 'Request Terminated', [], undefined, call.a.localTag);
    await this.end(call, 'cancelled', false);
  }

  /** re-INVITE passthrough (hold, codec change, session refresh): relayed to the other leg, its answer relayed back. */
  private async onReInvite(req: SipRequest, tx: ServerTransaction, _src: SipSource): Promise<void> {
    const m = this.byCallId.get(req.core?.callId ?? '');
    if (!m || m.call.state !== 'connected' || !m.call.b)
      return this.respond(tx, req, 481, 'Call/Transaction Does Not Exist');
    const tooSmall = this.timers.tooSmall(req);
    if (tooSmall)
      return this.respond(
        tx,
        req,
        422,
        'Session Interval Too Small',
        tooSmall,
        undefined,
        (m.side === 'a' ? m.call.a : m.call.b).localTag,
      );
    const other = m.side === 'a' ? m.call.b : m.call.a;
    const mine = m.side === 'a' ? m.call.a : m.call.b;
    const ctype = getHeader(req, 'Content-Type');
    const ct = this.inDialog(
      other,
      'INVITE',
      req.body.length && ctype
        ? { type: ctype, data: this.media.sdp(m.call, m.side, req.body, ctype) /* RTP relay */ }
        : undefined,
      [{ name: 'Contact', value: this.contactFor(other.target.transport) }, ...this.timers.requestHeaders(other)],
    );
    if (!ct) return this.respond(tx, req, 500, 'Server Internal Error');
    const cseq = other.cseq;
    ct.on('final', (res: SipResponse) => {
      const rct = getHeader(res, 'Content-Type');
      if (res.status >= 200 && res.status < 300) {
        // ACK the other side at once (a re-INVITE always carries the offer here or gets it in the 2xx)
        const headers: SipHeader[] = [];
        for (const r of other.routes) headers.push({ name: 'Route', value: r });
        headers.push(
          { name: 'From', value: `<${other.localUri}>;tag=${other.localTag}` },
          { name: 'To', value: `<${other.remoteUri}>${other.remoteTag ? `;tag=${other.remoteTag}` : ''}` },
          { name: 'Call-ID', value: other.callId },
          { name: 'CSeq', value: `${cseq} ACK` },
          { name: 'Content-Length', value: '0' },
        );
        try {
          this.stack.request(
            {
              type: 'request',
              method: 'ACK',
              uri: other.remoteTarget,
              version: 'SIP/2.0',
              headers,
              body: Buffer.alloc(0),
            },
            other.target,
          );
        } catch {
          /* ignore */
        }
      }
      this.respond(
        tx,
        req,
        res.status,
        res.reason,
        [
          { name: 'Contact', value: this.contactFor(mine.target.transport) },
          ...this.timers.reinvited(
            mine,
            req,
            other,
            res,
            () => bodyOf(sentRequest(ct)),
            () =>
              res.body.length && rct
                ? { type: rct, data: this.media.sdp(m.call, m.side === 'a' ? 'b' : 'a', res.body, rct) }
                : undefined,
          ),
        ],
        res.body.length && rct
          ? { type: rct, data: this.media.sdp(m.call, m.side === 'a' ? 'b' : 'a', res.body, rct) /* RTP relay */ }
          : undefined,
        mine.localTag,
      );
    });
    ct.on('timeout', () => this.respond(tx, req, 408, 'Request Timeout'));
    ct.on('transport-error', () => this.respond(tx, req, 503, 'Service Unavailable'));
  }
}

function escUser(u: string): string {
  return u.replace(/[^A-Za-z0-9\-_.!~*'()&=+$,;?/]/g, (c) => encodeURIComponent(c));
}

/** Authorization value answering a Digest challenge (MD5 / SHA-256, qop auth or none). */
export function digestAnswer(
  challenge: string,
  username: string,
  password: string,
  method: string,
  uri: string,
): string | null {
  const c = parseDigestHeader(challenge);
  if (!c) return null;
  const realm = c.params.get('realm') ?? '';
  const nonce = c.params.get('nonce');
  if (!nonce) return null;
  const algRaw = (c.params.get('algorithm') ?? 'MD5').toUpperCase();
  const alg = algRaw === 'SHA-256' ? 'SHA-256' : algRaw === 'MD5' ? 'MD5' : null;
  if (!alg) return null;
  const qops = (c.params.get('qop') ?? '').split(',').map((s) => s.trim());
  const h1 = ha1(alg, username, realm, password);
  const opaque = c.params.get('opaque');
  const q = (s: string) => `"${s.replace(/["\\]/g, (x) => '\\' + x)}"`;
  let v = `Digest username=${q(username)}, realm=${q(realm)}, nonce=${q(nonce)}, uri=${q(uri)}, algorithm=${alg}`;
  if (qops.includes('auth')) {
    const cnonce = createHash('md5')
      .update(String(Math.random()) + Date.now())
      .digest('hex')
      .slice(0, 16);
    const nc = '00000001';
    v += `, response=${q(digestResponse(alg, h1, nonce, method, uri, { qop: 'auth', nc, cnonce }))}, qop=auth, nc=${nc}, cnonce=${q(cnonce)}`;
  } else v += `, response=${q(digestResponse(alg, h1, nonce, method, uri))}`;
  if (opaque !== undefined) v += `, opaque=${q(opaque)}`;
  return v;
}
