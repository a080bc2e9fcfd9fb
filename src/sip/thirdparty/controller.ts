/**
 * Third-party call control (RFC 3725 flow I): `callback` and `p2p`. The server is the UAC of both legs:
 *
 *   INVITE A (no SDP) → A: 200 (offer1) → INVITE B (offer1) → B: 200 (answer1) → ACK B, ACK A (answer1)
 *
 * Each leg is routed with RoutingService (a registered user: its registered contact, first by q then by most recent
 * registration; a number: the gateways in failover order, digest auth answered with the gateway's credentials).
 * Both legs are billed to the requesting account through LiveCalls (src/domain/calls): leg 'a' and leg 'b' with the
 * same callid, one CDR each, charged once, rows in tb_livecalls so a crash leaves nothing unbilled (LiveCalls.recover).
 *
 * Credit: one reservation per account (LiveCalls). Leg b when it is rated, else leg a, "carries" the reservation (it
 * reserves the account's available credit); the other leg is registered free (on-net: a zero rate; a rated number:
 * no rate, its CDR is rated by CdrService from the normalised number), or reserves for itself when the carrier's
 * reservation was capped by the max call age. The bridge is cut when both legs together reach what was reserved
 * (maxBridgeSeconds), and at the max call age (LiveCalls.maxCallSeconds) at the latest.
 *
 * Limits of flow I (documented in docs): A's 200 is not ACKed until B answers, and A gives up after 64×T1 (32 s)
 * without ACK, so B may ring at most `bRingMs` (default 28 s). Re-INVITEs from either party are answered 200 with the
 * session description that party already has (session refresh); media changes are not relayed to the other party.
 */
import { randomBytes } from 'node:crypto';
import {
  createResponse,
  generateTag,
  getHeader,
  getHeaders,
  type SipHeader,
  type SipRequest,
  type SipResponse,
} from '../message/index.js';
import type { ClientTransaction, ServerTransaction, SipSource, SipStack, SipTarget, SipTransport } from '../stack.js';
import type { DomainServices } from '../../domain/deps.js';
import type { User } from '../../domain/accounts/users.js';
import type { Rate } from '../../domain/rating/rate.js';
import type { RouteDecision, RouteRequest } from '../../domain/routing/service.js';
import { routingFor } from '../../domain/routing/service.js';
import { liveCallsFor, type LiveCalls } from '../../domain/calls/index.js';
import type { Binding } from '../services/location.js';
import { parseDigestHeader, ha1, digestResponse, type DigestAlgorithm } from '../services/digest.js';
import { maxBridgeSeconds } from './billing.js';
import { hasMedia, rejectingAnswer } from './sdp.js';

export type StackLike = Pick<SipStack, 'request' | 'localAddress'>;
export interface RouterLike {
  route(r: RouteRequest): Promise<RouteDecision>;
}
/** The part of SipServer used here. */
export interface SipServerLike {
  location: { lookup(username: string): Binding[] };
  setCallState(username: string, state: 3 | 4 | null): void;
  setMethodHandler?(
    method: string,
    h: (req: SipRequest, tx: ServerTransaction, src: SipSource) => Promise<void> | void,
  ): void;
}

export interface ThirdPartyOptions {
  /** How long leg A may ring (ms), default 30 000 (below the stack's Timer B of 32 s, which also runs while ringing). */
  aRingMs?: number;
  /** How long leg B may ring (ms), default 28 000 (flow I: A's unacknowledged 200 lasts 32 s). */
  bRingMs?: number;
  /** Third-party calls one account may have in progress at once (default 10): bounds free on-net ringing too. */
  maxPerUser?: number;
  /** Display domain in From/To (default: sipdomain, else the local address). */
  domain?: string;
}

export interface ThirdPartyDeps {
  services: DomainServices;
  stack: StackLike;
  sip?: SipServerLike;
  routing?: RouterLike;
  live?: LiveCalls;
  options?: ThirdPartyOptions;
}

/** One way to reach a leg's party. */
export interface LegTarget {
  ruri: string;
  target: SipTarget;
  /** To header URI */
  to: string;
  name: string;
  auth?: { username: string; password: string };
}

/** A leg, routed and ready to be called. */
export interface LegPlan {
  /** as the requester gave it */
  dialled: string;
  /** username (on-net) or the normalised number: stored in the CDR */
  callee: string;
  route: string;
  rate?: Rate;
  /** the on-net party (for status 3/4) */
  username?: string;
  targets: LegTarget[];
}

export class ThirdPartyError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

type LegState = 'idle' | 'calling' | 'early' | 'confirmed' | 'ended';

interface Leg {
  name: 'a' | 'b';
  plan: LegPlan;
  callId: string;
  localTag: string;
  fromValue: string;
  cseq: number;
  state: LegState;
  target?: SipTarget;
  invite?: SipRequest;
  ct?: ClientTransaction;
  remoteTag?: string;
  toValue?: string;
  remoteTarget?: string;
  routeSet: string[];
  /** the session description this party holds (what we gave it) */
  given?: Buffer;
  /** the session description it gave us */
  got?: Buffer;
  ack?: SipRequest;
  connectAt?: number;
  /** the final status/reason when it failed */
  outcome?: string;
}

export type ThirdPartyKind = 'callback' | 'p2p';

export interface ThirdPartyCall {
  callid: string;
  kind: ThirdPartyKind;
  userId: number;
  username: string;
  state: 'calling-a' | 'calling-b' | 'connected' | 'ended';
  a: Leg;
  b: Leg;
  startAt: number;
  /** credit reserved for both legs together (micro-units); undefined when both legs are free */
  available?: number;
  endReason?: string;
  bridgeTimer?: NodeJS.Timeout;
  ended: Promise<void>;
  resolveEnded: () => void;
}

export interface CallSummary {
  callid: string;
  kind: ThirdPartyKind;
  user: string;
  state: string;
  a: string;
  b: string;
  a_state: string;
  b_state: string;
  reason: string;
}

const SIP_ESC = /[^A-Za-z0-9\-_.!~*'()&=+$,;?/]/g;
const escUser = (u: string) => u.replace(SIP_ESC, (c) => encodeURIComponent(c));
const hostForUri = (h: string) => (h.includes(':') && !h.startsWith('[') ? `[${h}]` : h);

export class ThirdPartyCalls {
  readonly live: LiveCalls;
  readonly routing: RouterLike;
  private readonly calls = new Map<string, ThirdPartyCall>();
  /** leg Call-ID → call */
  private readonly byLegCallId = new Map<string, { call: ThirdPartyCall; leg: Leg }>();
  /** calls being set up (routing, reservation) per account */
  private readonly settingUp = new Map<number, number>();
  private readonly opts: Required<Omit<ThirdPartyOptions, 'domain'>> & { domain?: string };
  private stopped = false;

  constructor(private readonly deps: ThirdPartyDeps) {
    this.live = deps.live ?? liveCallsFor(deps.services);
    this.routing = deps.routing ?? routingFor(deps.services);
    this.opts = { aRingMs: 30_000, bRingMs: 28_000, maxPerUser: 10, ...deps.options };
  }

  private get log() {
    return this.deps.services.log;
  }

  // ------------------------------------------------------------------ planning

  /** Routes one leg for the paying user. Throws ThirdPartyError with the refusal. */
  async planLeg(user: User, dialled: string, callerLabel: string): Promise<LegPlan> {
    const d = await this.routing.route({
      caller: callerLabel,
      called: dialled,
      fromIp: '',
      user,
      reservedCredit: this.live.reservedFor(user.id),
    });
    if (d.kind === 'reject') throw new ThirdPartyError(`${dialled}: ${d.reason} (${d.status})`, d.status);
    if (d.kind === 'user') {
      const bs = this.deps.sip ? [...this.deps.sip.location.lookup(d.user.username)] : [];
      if (!bs.length)
        throw new ThirdPartyError(`${dialled}: user ${d.user.username} has no registered phone (480)`, 480);
      bs.sort((x, y) => y.q - x.q || y.registeredAt - x.registeredAt);
      const domain = this.domainFor(bs[0]!.transport);
      return {
        dialled,
        callee: d.user.username,
        route: `user:${d.user.username}`,
        username: d.user.username,
        targets: bs.map((b) => ({
          ruri: b.contact,
          target: { transport: b.transport, host: b.srcIp, port: b.srcPort, connId: b.connId },
          to: `sip:${escUser(d.user.username)}@${domain}`,
          name: d.user.username,
        })),
      };
    }
    if (!d.candidates.length) throw new ThirdPartyError(`${dialled}: no gateway for ${d.number} (503)`, 503);
    return {
      dialled,
      callee: d.number,
      route: `gw:${d.candidates.map((c) => c.name).join(',')}`.slice(0, 128),
      rate: d.rate,
      targets: d.candidates.map((c) => {
        const host = hostForUri(c.host);
        const uri = `sip:${escUser(c.number)}@${host}:${c.port}${c.transport === 'udp' ? '' : `;transport=${c.transport}`}`;
        return {
          ruri: uri,
          target: { transport: c.transport as SipTransport, host: c.host, port: c.port },
          to: `sip:${escUser(c.number)}@${host}`,
          name: c.name,
          auth: c.username ? { username: c.username, password: c.password } : undefined,
        };
      }),
    };
  }

  private domainFor(t: SipTransport): string {
    if (this.opts.domain) return this.opts.domain;
    const o = this.deps.services.config.options as { sipdomain?: string };
    if (o.sipdomain) return o.sipdomain;
    const l = this.deps.stack.localAddress(t);
    return l ? hostForUri(l.host) : '127.0.0.1';
  }

  // ------------------------------------------------------------------ start

  /**
   * Validates, routes both legs and reserves the credit, then starts the call in the background. Resolves with
   * the call (its callid) as soon as leg A is being called; throws ThirdPartyError with a clear reason otherwise
   * (the refusal is on record as CDRs with cost 0 for both legs).
   */
  async start(kind: ThirdPartyKind, user: User, aNumber: string, bNumber: string): Promise<ThirdPartyCall> {
    if (this.stopped) throw new ThirdPartyError('the SIP stack is stopping', 503);
    if (!aNumber || !bNumber) throw new ThirdPartyError('both numbers are needed');
    // counted synchronously (calls being set up included), so parallel requests cannot pass the limit together
    let mine = this.settingUp.get(user.id) ?? 0;
    for (const c of this.calls.values()) if (c.userId === user.id) mine++;
    if (mine >= this.opts.maxPerUser)
      throw new ThirdPartyError(
        `${mine} calls of this account are already in progress (at most ${this.opts.maxPerUser})`,
        486,
      );
    this.settingUp.set(user.id, (this.settingUp.get(user.id) ?? 0) + 1);
    try {
      return await this.setUp(kind, user, aNumber, bNumber);
    } finally {
      const n = (this.settingUp.get(user.id) ?? 1) - 1;
      if (n > 0) this.settingUp.set(user.id, n);
      else this.settingUp.delete(user.id);
    }
  }

  private async setUp(kind: ThirdPartyKind, user: User, aNumber: string, bNumber: string): Promise<ThirdPartyCall> {
    this.ensureHandlers();
    const callid = `3pcc-${randomBytes(10).toString('hex')}`;
    const startAt = Date.now();
    let a: LegPlan;
    let b: LegPlan;
    try {
      a = await this.planLeg(user, aNumber, bNumber);
      b = await this.planLeg(user, bNumber, aNumber);
    } catch (e) {
      if (e instanceof ThirdPartyError) await this.refuseBoth(callid, user, aNumber, bNumber, e.message, startAt);
      throw e;
    }
    if (a.username && a.username === b.username) {
      await this.refuseBoth(callid, user, a.callee, b.callee, 'both legs reach the same phone', startAt);
      throw new ThirdPartyError('both numbers reach the same phone');
    }
    // the reservation: carried by leg b when it is rated, else by leg a; the other leg is registered without a rate
    const budget = await this.reserveLegs(callid, user, a, b, startAt);
    this.live.start();
    const mkLeg = (name: 'a' | 'b', p: LegPlan, fromLabel: string): Leg => {
      const tag = generateTag();
      const domain = this.domainFor(p.targets[0]!.target.transport);
      return {
        name,
        plan: p,
        callId: `${callid}-${name}`,
        localTag: tag,
        fromValue: `"${fromLabel.replace(/["\\\r\n]/g, '')}" <sip:${escUser(fromLabel)}@${domain}>;tag=${tag}`,
        cseq: 0,
        state: 'idle',
        routeSet: [],
      };
    };
    let resolveEnded!: () => void;
    const ended = new Promise<void>((r) => (resolveEnded = r));
    const call: ThirdPartyCall = {
      callid,
      kind,
      userId: user.id,
      username: user.username,
      state: 'calling-a',
      a: mkLeg('a', a, b.callee),
      b: mkLeg('b', b, a.callee),
      startAt,
      available: budget,
      ended,
      resolveEnded,
    };
    this.calls.set(callid, call);
    this.byLegCallId.set(call.a.callId, { call, leg: call.a });
    this.byLegCallId.set(call.b.callId, { call, leg: call.b });
    for (const leg of ['a', 'b'] as const)
      this.live.onHangup(callid, leg, (reason) => void this.hangup(callid, reason));
    void this.run(call).catch((e: unknown) => {
      this.log.warn({ err: String((e as Error)?.message ?? e), callid }, 'third-party call failed');
      void this.end(call, 'internal error');
    });
    return call;
  }

  /**
   * Registers both legs with LiveCalls (rows in tb_livecalls, one reservation per account). The rated leg b (else
   * a) "carries" the reservation: it reserves the account's available credit. The other leg is registered free
   * (on-net: a zero rate; a rated number: no rate, its CDR is rated from the number by CdrService) unless the
   * carrier's reservation was capped by the max call age — then it reserves for itself too. Answers the budget of
   * the bridge (the sum reserved), undefined when both legs are free. Throws ThirdPartyError (402 …) with both
   * legs on record.
   */
  private async reserveLegs(
    callid: string,
    user: User,
    a: LegPlan,
    b: LegPlan,
    startAt: number,
  ): Promise<number | undefined> {
    const carrier: 'a' | 'b' | null = b.rate ? 'b' : a.rate ? 'a' : null;
    const first = carrier ?? 'a';
    const other = first === 'a' ? 'b' : 'a';
    const plans = { a, b };
    const labels = { a: b.callee, b: a.callee };
    const reserve = (leg: 'a' | 'b', rate: Rate | undefined) => {
      const p = plans[leg];
      return this.live.reserve({
        callid,
        leg,
        userId: user.id,
        caller: labels[leg],
        callee: p.callee,
        route: p.route,
        rate,
        startAt,
        parties: p.username ? [p.username] : [],
      });
    };
    const freeRate = (p: LegPlan) => (p.username ? onNetRate(user.currency) : undefined);
    const refuseOther = (reason: string) =>
      this.live.recordRefusal(
        {
          callid,
          leg: other,
          userId: user.id,
          caller: labels[other],
          callee: plans[other].callee,
          route: plans[other].route,
          startAt,
        },
        reason,
      );
    const r1 = await reserve(first, carrier ? plans[first].rate : freeRate(plans[first]));
    if (!r1.ok) {
      await refuseOther(r1.reason);
      throw new ThirdPartyError(`${r1.reason} (${r1.status})`, r1.status);
    }
    let otherRate = freeRate(plans[other]);
    const oRate = plans[other].rate;
    if (carrier && oRate && r1.capped) {
      // the carrier reserved only up to the max call age: the other rated leg reserves for itself from what is left
      const bal = await this.deps.services.ledger.balance(user.id);
      const left = bal ? bal.credit - this.live.reservedFor(user.id) : 0;
      if (this.deps.services.rating.maxDuration(Math.max(0, left), oRate) > 0) otherRate = oRate;
    }
    let budget = carrier ? r1.reserved : undefined;
    if (budget !== undefined && !otherRate && maxBridgeSeconds(budget, a.rate, b.rate) <= 0) {
      await this.live.finish(callid, first, { reason: 'insufficient credit for both legs' });
      await refuseOther('insufficient credit for both legs');
      throw new ThirdPartyError('insufficient credit for both legs (402)', 402);
    }
    const r2 = await reserve(other, otherRate);
    if (!r2.ok) {
      await this.live.finish(callid, first, { reason: r2.reason });
      throw new ThirdPartyError(`${r2.reason} (${r2.status})`, r2.status);
    }
    if (budget !== undefined && otherRate === oRate && oRate) budget += r2.reserved;
    if (budget !== undefined && maxBridgeSeconds(budget, a.rate, b.rate) <= 0) {
      await this.live.finish(callid, first, { reason: 'insufficient credit for both legs' });
      await this.live.finish(callid, other, { reason: 'insufficient credit for both legs' });
      throw new ThirdPartyError('insufficient credit for both legs (402)', 402);
    }
    return budget;
  }

  private async refuseBoth(
    callid: string,
    user: User,
    a: string,
    b: string,
    reason: string,
    startAt: number,
  ): Promise<void> {
    this.live.countAttempt();
    await this.live.recordRefusal({ callid, leg: 'a', userId: user.id, caller: b, callee: a, startAt }, reason);
    await this.live.recordRefusal({ callid, leg: 'b', userId: user.id, caller: a, callee: b, startAt }, reason);
  }

  // ------------------------------------------------------------------ the flow

  private async run(call: ThirdPartyCall): Promise<void> {
    const a = call.a;
    const b = call.b;
    this.setState(a, 3);
    const ra = await this.invite(call, a, undefined, this.opts.aRingMs);
    if (isEnded(call)) return;
    if (!ra) return this.end(call, `A leg ${a.outcome ?? 'failed'}`, `not placed: A leg ${a.outcome ?? 'failed'}`);
    a.got = Buffer.from(ra.body);
    await this.live.connected(call.callid, 'a', {
      at: a.connectAt,
      onMaxDuration: () => void this.hangup(call.callid, 'maxduration reached'),
    });
    if (isEnded(call)) return;
    if (!hasMedia(a.got)) {
      this.ack(a, undefined);
      return this.end(call, 'A answered without an SDP offer', 'not placed: A answered without an SDP offer');
    }
    call.state = 'calling-b';
    this.setState(b, 3);
    const rb = await this.invite(call, b, a.got, this.opts.bRingMs);
    if (isEnded(call)) return;
    if (!rb) {
      this.ack(a, rejectingAnswer(a.got));
      return this.end(call, `B leg ${b.outcome ?? 'failed'}`);
    }
    b.got = Buffer.from(rb.body);
    b.given = a.got;
    this.ack(b, undefined);
    if (!hasMedia(b.got)) {
      this.ack(a, rejectingAnswer(a.got));
      return this.end(call, 'B answered without an SDP answer');
    }
    a.given = b.got;
    this.ack(a, b.got);
    call.state = 'connected';
    this.setState(a, 4);
    this.setState(b, 4);
    await this.live.connected(call.callid, 'b', {
      at: b.connectAt,
      onMaxDuration: () => void this.hangup(call.callid, 'maxduration reached'),
    });
    // the bridge ends when both legs together reach the credit available at set-up; free calls at the max call age
    const aElapsed = Math.ceil((b.connectAt! - a.connectAt!) / 1000);
    const x =
      call.available !== undefined
        ? maxBridgeSeconds(call.available, a.plan.rate, b.plan.rate, aElapsed, this.live.maxCallSeconds - aElapsed)
        : Math.max(0, this.live.maxCallSeconds - aElapsed);
    if (x <= 0) return this.end(call, 'credit exhausted');
    call.bridgeTimer = setTimeout(() => void this.hangup(call.callid, 'maxduration reached'), x * 1000);
    call.bridgeTimer.unref?.();
  }

  /**
   * Calls one leg through its targets in order (failover on 5xx, 408, 480, timeout, transport error; digest auth once
   * per target). Resolves with the 2xx (the dialog confirmed on our side, not ACKed yet) or null (leg.outcome says why).
   */
  private async invite(
    call: ThirdPartyCall,
    leg: Leg,
    sdp: Buffer | undefined,
    ringMs: number,
  ): Promise<SipResponse | null> {
    leg.state = 'calling';
    for (const t of leg.plan.targets) {
      let authHeader: SipHeader | undefined;
      for (let attempt = 0; attempt < 2; attempt++) {
        if (call.state === 'ended') return null;
        const res = await this.sendInvite(call, leg, t, sdp, ringMs, authHeader);
        if (res === 'cancelled') return null;
        if (res === 'no-answer') {
          leg.outcome = `${t.name}: no answer within ${Math.round(ringMs / 1000)} s`;
          leg.state = 'ended';
          return null; // the party exists but did not answer: no failover
        }
        if (res === 'timeout' || res === 'transport-error') {
          leg.outcome =
            res === 'timeout' ? `${t.name}: no answer (timeout)` : `${t.name}: unreachable (transport error)`;
          break; // next target
        }
        if (res.status >= 200 && res.status < 300) return res;
        leg.outcome = `${t.name}: ${res.status} ${res.reason}`.trim();
        if ((res.status === 401 || res.status === 407) && attempt === 0 && t.auth) {
          authHeader = this.authorize(res, leg, t);
          if (authHeader) continue;
        }
        if (res.status >= 500 || res.status === 408 || res.status === 480) break; // next target
        leg.state = 'ended';
        return null; // 4xx/6xx: the party refused
      }
    }
    leg.state = 'ended';
    return null;
  }

  private sendInvite(
    call: ThirdPartyCall,
    leg: Leg,
    t: LegTarget,
    sdp: Buffer | undefined,
    ringMs: number,
    auth?: SipHeader,
  ): Promise<SipResponse | 'timeout' | 'transport-error' | 'cancelled' | 'no-answer'> {
    leg.cseq++;
    leg.target = t.target;
    const local = this.deps.stack.localAddress(t.target.transport);
    const contactHost = local ? `${hostForUri(local.host)}:${local.port}` : '127.0.0.1';
    const headers: SipHeader[] = [
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: leg.fromValue },
      { name: 'To', value: `<${t.to}>` },
      { name: 'Call-ID', value: leg.callId },
      { name: 'CSeq', value: `${leg.cseq} INVITE` },
      {
        name: 'Contact',
        value: `<sip:3pcc@${contactHost}${t.target.transport === 'udp' ? '' : `;transport=${t.target.transport}`}>`,
      },
      { name: 'Allow', value: 'INVITE, ACK, BYE, CANCEL, OPTIONS' },
      { name: 'User-Agent', value: `voxswitch/${this.deps.services.version}` },
    ];
    if (auth) headers.push(auth);
    const body = sdp ?? Buffer.alloc(0);
    if (sdp) headers.push({ name: 'Content-Type', value: 'application/sdp' });
    headers.push({ name: 'Content-Length', value: String(body.length) });
    const req: SipRequest = { type: 'request', method: 'INVITE', uri: t.ruri, version: 'SIP/2.0', headers, body };
    leg.invite = req;
    return new Promise((resolve) => {
      let settled = false;
      let ringTimer: NodeJS.Timeout | undefined;
      const settle = (v: SipResponse | 'timeout' | 'transport-error' | 'cancelled' | 'no-answer') => {
        if (settled) return;
        settled = true;
        if (ringTimer) clearTimeout(ringTimer);
        resolve(v);
      };
      let ct: ClientTransaction;
      let ringExpired = false;
      try {
        ct = this.deps.stack.request(req, t.target);
      } catch (e) {
        this.log.warn({ err: String(e), callid: call.callid }, 'third-party INVITE not sendable');
        return settle('transport-error');
      }
      leg.ct = ct;
      ringTimer = setTimeout(() => {
        ringExpired = true;
        ct.cancel?.();
        // the CANCEL makes the party answer 487; if it never does, give up anyway
        ringTimer = setTimeout(() => settle('no-answer'), 4000);
        ringTimer.unref?.();
      }, ringMs);
      ringTimer.unref?.();
      ct.on('provisional', (res: SipResponse) => {
        if (res.status > 100 && leg.state === 'calling') leg.state = 'early';
      });
      ct.on('final', (res: SipResponse) => {
        if (res.status >= 200 && res.status < 300) {
          if (!settled && call.state !== 'ended' && leg.state !== 'ended') {
            this.confirm(leg, res, t.target);
            settle(res);
          } else if (leg.ack) {
            this.deps.stack.request(leg.ack, leg.target!); // retransmitted 2xx: ACK again
          } else if (!settled || call.state === 'ended' || leg.state === 'ended') {
            // answered after we gave up (CANCEL race) or after the call ended: ACK and hang up that dialog
            if (!leg.remoteTag) this.confirm(leg, res, t.target);
            this.ack(leg, sdp ? undefined : rejectingAnswer(res.body));
            this.bye(leg);
            settle('cancelled');
          }
          return;
        }
        settle(ringExpired && res.status === 487 ? 'no-answer' : res);
      });
      ct.on('timeout', () => settle('timeout'));
      ct.on('transport-error', () => settle('transport-error'));
    });
  }

  /** Dialog state from a 2xx (RFC 3261 §12.1.2). */
  private confirm(leg: Leg, res: SipResponse, target: SipTarget): void {
    const core = res.core;
    leg.remoteTag = core?.to?.tag ?? undefined;
    leg.toValue = getHeader(res, 'To') ?? `<${leg.plan.targets[0]!.to}>`;
    const contact = core?.contact?.[0];
    leg.remoteTarget = contact && 'uri' in contact ? contact.uri.raw : leg.invite!.uri;
    leg.routeSet = getHeaders(res, 'Record-Route')
      .flatMap((v) => v.split(/,(?![^<]*>)/).map((s) => s.trim()))
      .reverse();
    leg.target = target;
    leg.state = 'confirmed';
    leg.connectAt = Date.now();
  }

  private authorize(res: SipResponse, leg: Leg, t: LegTarget): SipHeader | undefined {
    const proxy = res.status === 407;
    const ch = getHeader(res, proxy ? 'Proxy-Authenticate' : 'WWW-Authenticate');
    const d = ch ? parseDigestHeader(ch) : null;
    if (!d || !t.auth) return undefined;
    const realm = d.params.get('realm') ?? '';
    const nonce = d.params.get('nonce') ?? '';
    const algName = (d.params.get('algorithm') ?? 'MD5').toUpperCase();
    const alg: DigestAlgorithm | null = algName === 'MD5' ? 'MD5' : algName === 'SHA-256' ? 'SHA-256' : null;
    if (!alg || !nonce) return undefined;
    const qops = (d.params.get('qop') ?? '').split(',').map((s) => s.trim());
    const qop = qops.includes('auth')
      ? { qop: 'auth', nc: '00000001', cnonce: randomBytes(8).toString('hex') }
      : undefined;
    const uri = leg.invite!.uri;
    const response = digestResponse(alg, ha1(alg, t.auth.username, realm, t.auth.password), nonce, 'INVITE', uri, qop);
    const q = (s: string) => `"${s.replace(/["\\]/g, '')}"`;
    let v = `Digest username=${q(t.auth.username)}, realm=${q(realm)}, nonce=${q(nonce)}, uri=${q(uri)}, response=${q(response)}, algorithm=${alg}`;
    if (qop) v += `, qop=auth, nc=${qop.nc}, cnonce=${q(qop.cnonce)}`;
    const opaque = d.params.get('opaque');
    if (opaque !== undefined) v += `, opaque=${q(opaque)}`;
    return { name: proxy ? 'Proxy-Authorization' : 'Authorization', value: v };
  }

  /** An in-dialog request of a leg (ACK / BYE). */
  private inDialog(leg: Leg, method: string, cseq: number, body?: Buffer): SipRequest {
    const headers: SipHeader[] = [];
    for (const r of leg.routeSet) headers.push({ name: 'Route', value: r });
    headers.push(
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: leg.fromValue },
      { name: 'To', value: leg.toValue ?? '' },
      { name: 'Call-ID', value: leg.callId },
      { name: 'CSeq', value: `${cseq} ${method}` },
    );
    if (body && body.length) headers.push({ name: 'Content-Type', value: 'application/sdp' });
    headers.push({ name: 'Content-Length', value: String(body?.length ?? 0) });
    return {
      type: 'request',
      method,
      uri: leg.remoteTarget ?? leg.invite!.uri,
      version: 'SIP/2.0',
      headers,
      body: body ?? Buffer.alloc(0),
    };
  }

  private ack(leg: Leg, body: Buffer | undefined): void {
    if (!leg.target || !leg.toValue) return;
    leg.ack = this.inDialog(leg, 'ACK', leg.cseq, body);
    try {
      this.deps.stack.request(leg.ack, leg.target);
    } catch (e) {
      this.log.warn({ err: String(e), callid: leg.callId }, 'third-party ACK not sendable');
    }
  }

  private bye(leg: Leg): void {
    if (leg.state !== 'confirmed' || !leg.target) return;
    leg.state = 'ended';
    leg.cseq++;
    try {
      const ct = this.deps.stack.request(this.inDialog(leg, 'BYE', leg.cseq), leg.target);
      ct.on('timeout', () => this.log.debug({ callid: leg.callId }, 'BYE unanswered'));
    } catch (e) {
      this.log.warn({ err: String(e), callid: leg.callId }, 'third-party BYE not sendable');
    }
  }

  private setState(leg: Leg, s: 3 | 4 | null): void {
    if (leg.plan.username) this.deps.sip?.setCallState(leg.plan.username, s);
  }

  /** Ends a call: BYE/CANCEL what is up, CDR of each leg (charged once), state cleared. Idempotent. */
  private async end(call: ThirdPartyCall, reason: string, bReason?: string): Promise<void> {
    if (call.state === 'ended') return;
    call.state = 'ended';
    call.endReason = reason;
    if (call.bridgeTimer) clearTimeout(call.bridgeTimer);
    const endAt = Date.now();
    for (const leg of [call.a, call.b]) {
      if (leg.state === 'confirmed') {
        // a confirmed leg that was never ACKed (A while B rang) gets its ACK (with a rejecting answer) first
        if (!leg.ack)
          this.ack(leg, leg.name === 'a' && leg.got && hasMedia(leg.got) ? rejectingAnswer(leg.got) : undefined);
        this.bye(leg);
      } else if (leg.state === 'calling' || leg.state === 'early') {
        leg.ct?.cancel?.();
        leg.state = 'ended';
      }
      this.setState(leg, null);
    }
    try {
      await this.live.finish(call.callid, 'a', {
        endAt,
        reason: call.a.connectAt ? reason : (call.a.outcome ?? reason),
      });
      await this.live.finish(call.callid, 'b', {
        endAt,
        reason: call.b.connectAt ? reason : (call.b.outcome ?? bReason ?? reason),
      });
    } finally {
      this.calls.delete(call.callid);
      // keep the Call-IDs a little for late BYE / 2xx retransmissions
      const t = setTimeout(() => {
        this.byLegCallId.delete(call.a.callId);
        this.byLegCallId.delete(call.b.callId);
      }, 32_000);
      t.unref?.();
      call.resolveEnded();
    }
  }

  /** Ends a live third-party call (disccall, maxduration). False when unknown. */
  async hangup(callid: string, reason = 'disconnected'): Promise<boolean> {
    const c = this.calls.get(callid);
    if (!c) return false;
    await this.end(c, reason);
    return true;
  }

  get(callid: string): ThirdPartyCall | undefined {
    return this.calls.get(callid);
  }

  list(): CallSummary[] {
    return [...this.calls.values()].map((c) => ({
      callid: c.callid,
      kind: c.kind,
      user: c.username,
      state: c.state,
      a: c.a.plan.callee,
      b: c.b.plan.callee,
      a_state: c.a.state,
      b_state: c.b.state,
      reason: c.endReason ?? '',
    }));
  }

  /** Hangs up every call (server stop). */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled([...this.calls.values()].map((c) => this.end(c, 'server shutting down')));
  }

  // ------------------------------------------------------------------ requests from the parties

  /**
   * Handles a request inside one of our dialogs (BYE, re-INVITE). Returns false when the request is not ours
   * (the caller passes it on). Wire: the call layer's BYE/INVITE handlers call this first.
   */
  handleInDialog(req: SipRequest, tx: ServerTransaction): boolean {
    const callId = req.core?.callId;
    if (!callId || !callId.startsWith('3pcc-')) return false;
    const hit = this.byLegCallId.get(callId);
    const toTag = req.core?.to?.tag;
    if (!hit || (toTag && toTag !== hit.leg.localTag)) {
      if (req.method === 'BYE' || req.method === 'INVITE')
        tx.respond(createResponse(req, 481, 'Call/Transaction Does Not Exist'));
      return true;
    }
    const { call, leg } = hit;
    if (req.method === 'BYE') {
      tx.respond(createResponse(req, 200, 'OK'));
      if (leg.state === 'confirmed') {
        leg.state = 'ended';
        void this.end(call, leg.name === 'a' ? 'A hung up' : 'B hung up');
      }
      return true;
    }
    if (req.method === 'INVITE') {
      // session refresh: answer with the description this party already holds (media changes are not relayed)
      if (leg.state !== 'confirmed' || !leg.given) {
        tx.respond(createResponse(req, 491, 'Request Pending'));
        return true;
      }
      const local = this.deps.stack.localAddress(leg.target!.transport);
      const contactHost = local ? `${hostForUri(local.host)}:${local.port}` : '127.0.0.1';
      tx.respond(
        createResponse(req, 200, 'OK', {
          headers: [
            {
              name: 'Contact',
              value: `<sip:3pcc@${contactHost}${leg.target!.transport === 'udp' ? '' : `;transport=${leg.target!.transport}`}>`,
            },
          ],
          body: leg.given,
          contentType: 'application/sdp',
        }),
      );
      return true;
    }
    return false;
  }

  /**
   * Makes sure BYE and INVITE reach handleInDialog: wraps the SipServer's current handlers (the B2BUA's, when
   * installed) so that requests in our dialogs are ours and everything else goes where it went before. Called at
   * every start() so it also works when the call layer installs its handlers after us.
   */
  ensureHandlers(): void {
    const sip = this.deps.sip as (SipServerLike & { handlers?: Map<string, Handler> }) | undefined;
    if (!sip?.setMethodHandler) return;
    for (const method of ['BYE', 'INVITE']) {
      const current = sip.handlers?.get(method);
      if (current && (current as Marked)[MINE]) continue;
      if (!current && method === 'INVITE') continue; // no call layer: INVITE stays unsupported (501)
      const wrapped: Handler = (req, tx, src) => {
        if (this.handleInDialog(req, tx)) return;
        if (current) return current(req, tx, src);
        tx.respond(createResponse(req, 481, 'Call/Transaction Does Not Exist'));
      };
      (wrapped as Marked)[MINE] = true;
      sip.setMethodHandler(method, wrapped);
    }
  }
}

/** The rate of an on-net leg (a registered user): free, in the account's currency, so its CDR says "normal". */
export function onNetRate(currency: string): Rate {
  return {
    id: 0,
    planId: 0,
    prefix: '',
    destination: 'on-net',
    price: 0,
    connectfee: 0,
    minduration: 0,
    increment: 1,
    currency,
    validFrom: null,
    validTo: null,
  };
}

/** (not narrowed by TypeScript across awaits) */
function isEnded(c: ThirdPartyCall): boolean {
  return c.state === 'ended';
}

type Handler = (req: SipRequest, tx: ServerTransaction, src: SipSource) => Promise<void> | void;
const MINE = Symbol('thirdparty');
type Marked = Handler & { [MINE]?: boolean };

// ------------------------------------------------------------------ one instance per server

const instances = new WeakMap<DomainServices, ThirdPartyCalls>();

/** The SIP stack of a SipServer (its `stack` field; see the report: the lead is asked to make it public). */
export function stackOf(sip: unknown): StackLike | undefined {
  const s = (sip as { stack?: StackLike } | undefined)?.stack;
  return s && typeof s.request === 'function' ? s : undefined;
}

/**
 * The ThirdPartyCalls of a server, created on first use from services.sip. `deps` (tests) replace parts on the
 * first call only. Throws ThirdPartyError when the SIP stack is disabled.
 */
export function thirdPartyFor(
  services: DomainServices & { sip?: unknown },
  deps: Partial<Omit<ThirdPartyDeps, 'services'>> = {},
): ThirdPartyCalls {
  let t = instances.get(services);
  if (t) return t;
  const sip = services.sip;
  const stack = deps.stack ?? stackOf(sip);
  if (!stack) throw new ThirdPartyError('the SIP stack is disabled (usesip=false)', 503);
  const routing = deps.routing ?? (services as { routing?: RouterLike }).routing;
  t = new ThirdPartyCalls({
    services,
    stack,
    sip: deps.sip ?? (sip as SipServerLike | undefined),
    routing,
    live: deps.live,
    options: deps.options,
  });
  instances.set(services, t);
  return t;
}

/** The instance of a server if one was created (for shutdown: `await existingThirdParty(services)?.stop()`). */
export function existingThirdParty(services: DomainServices): ThirdPartyCalls | undefined {
  return instances.get(services);
}

/** Replaces the instance of a server (tests: inject a router). */
export function setThirdParty(services: DomainServices, t: ThirdPartyCalls | undefined): void {
  if (t) instances.set(services, t);
  else instances.delete(services);
}
