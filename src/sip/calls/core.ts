/**
 * The state the B2BUA's call phases share (set-up/failover in setup.ts, in-dialog requests in indialog.ts, teardown
 * in teardown.ts): the calls, their legs, the injected services and the answering helpers.
 */
import { getHeaders, type SipHeader, type SipRequest } from '../message/index.js';
import { escapeUser, uriHostPart } from '../message/index.js';
import type { ClientTransaction, ServerTransaction, SipSource, SipTransport } from '../stack.js';
import type { SipServer } from '../server.js';
import type { DomainServices } from '../../domain/deps.js';
import type { AuthUser, User } from '../../domain/accounts/users.js';
import type { RouteDecision, RouteRequest, GatewayCandidate, Gateway } from '../../domain/routing/service.js';
import type { LiveCalls } from '../../domain/calls/livecalls.js';
import type { DialogLeg } from '../dialog/uac.js';
import type { DialogId, DialogTable } from '../dialog/table.js';
import type { SipHop } from '../trunks/resolve.js';
import { SessionTimers } from './sessiontimer.js';
import { CallMedia } from '../media/index.js';
import { respondTo } from '../product.js';
import { Conference } from '../conference/service.js';
import { CallMonitor } from '../monitor/service.js';
import { join } from 'node:path';
import { PinGuard } from '../ivr/pinguard.js';
import { PromptStore } from '../ivr/prompts.js';

/** A gateway to try; `hop` once its host was resolved (RFC 3263: one entry per address of each SRV target). */
export type GatewayHop = GatewayCandidate & { hop?: SipHop };

export interface Router {
  route(r: RouteRequest): Promise<RouteDecision>;
  gatewayForIp(ip: string): Promise<Gateway | undefined>;
}

export interface B2buaOptions {
  /** seconds before the `noanswer` forward rule applies (default 20) */
  noAnswerSeconds?: number;
  /** how long a B leg may stay without any response before failing over (ms, default 5000) */
  legTimeoutMs?: number;
  /** how long a B leg may ring (after a provisional response) without a final answer, seconds (default 120) */
  ringTimeoutSeconds?: number;
}

/** What the B2BUA is built from (src/server.ts; tests build their own). */
export interface B2buaDeps {
  services: DomainServices;
  /** the SIP server: its stack, dialog table, location service and digest authentication */
  sip: SipServer;
  router: Router;
  /** the live calls of the server (services.liveCalls): reservations, CDRs, disccall */
  live: LiveCalls;
}

/** A call leg: the dialog fields (remoteTarget = the remote Contact; invite = the INVITE sent on leg B) plus state. */
export interface Leg extends DialogLeg {
  ct?: ClientTransaction;
  done?: boolean;
  gateway?: GatewayCandidate;
  authTried?: boolean;
  /** a REFER came on this leg before: the next one's NOTIFYs carry Event: refer;id=<CSeq> (RFC 3515 §2.4.6) */
  referred?: boolean;
}

export interface Call {
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
  /** the gateways still to try (failover order) */
  /** The gateways (and, once resolved, each one's RFC 3263 hops) still to try, in order. */
  gwQueue?: GatewayHop[];
  /** the account behind each side (the authenticated caller, the called user), for a REFER from that side */
  users?: { a?: string; b?: string };
  /** the side whose REFER is being carried out (./transfer.ts; one at a time) */
  transferring?: Side;
  /** the referrer hung up while its transfer went on: only its leg ended (./indialog.ts onBye) */
  referrerGone?: boolean;
}

export type Side = 'a' | 'b';

/** The leg of a side (the B leg once answered). */
export function legOf(call: Call, side: Side): Leg | undefined {
  return side === 'a' ? call.a : call.b;
}

/** The dialog id of a leg (for the dialog table). */
export function dialogIdOf(leg: DialogLeg): DialogId {
  return { callId: leg.callId, localTag: leg.localTag, remoteTag: leg.remoteTag ?? '' };
}

export class CallCore {
  /** Call-ID of each leg → its call (every call the B2BUA holds, for stop() and size()) */
  readonly byCallId = new Map<string, { call: Call; side: Side }>();
  readonly o: Required<B2buaOptions>;
  /** RFC 4028 session timers of the legs (options sessionexpires / minse) */
  readonly timers: SessionTimers;
  /** RTP relay (src/sip/media): per-call relay sessions, SDP rewriting, RTP timeout */
  readonly media: CallMedia;
  readonly services: DomainServices;
  readonly sip: SipServer;
  readonly stack: SipServer['stack'];
  readonly dialogs: DialogTable;
  readonly router: Router;
  readonly live: LiveCalls;
  /** conference rooms (src/sip/conference): calls to a room number are answered there */
  readonly conference: Conference;
  /** call listening (src/sip/monitor, voicehere): a live call's relayed media forked to a listener */
  readonly monitor: CallMonitor;
  /** starts a callback (src/sip/callcontrol, set by the composition root): the callback access number's calls */
  startCallback?: (user: User, anum: string, bnum: string) => Promise<string>;
  /** the IVR's voice prompts (<datadir>/prompts, made on first use: src/sip/ivr/prompts.ts) */
  readonly prompts: PromptStore;
  /** Wrong access-number PINs counted across calls (src/sip/ivr/pinguard.ts). */
  readonly pinGuard: PinGuard;

  /** The sip log area: call set-up, connect and end with cause. */
  readonly callLog: DomainServices['log'];

  constructor(deps: B2buaDeps, opts: B2buaOptions = {}) {
    this.services = deps.services;
    this.callLog = deps.services.logs.get('sip');
    this.sip = deps.sip;
    this.stack = deps.sip.stack;
    this.dialogs = deps.sip.dialogs;
    this.router = deps.router;
    this.live = deps.live;
    this.o = {
      noAnswerSeconds: opts.noAnswerSeconds ?? 20,
      legTimeoutMs: opts.legTimeoutMs ?? 5000,
      ringTimeoutSeconds: opts.ringTimeoutSeconds ?? 120,
    };
    const options = () => this.services.config.options;
    this.timers = new SessionTimers(
      this.stack,
      () => ({ sessionExpires: options().sessionexpires, minSe: options().minse }),
      (t) => this.contactFor(t),
      { log: this.services.log },
    );
    this.media = new CallMedia(this.services);
    this.prompts = new PromptStore(join(this.services.config.dataDir, 'prompts'), this.services.log);
    this.conference = new Conference(this);
    this.pinGuard = new PinGuard(this.services.state.limits, () => this.services.config.options, this.services.log);
    this.monitor = new CallMonitor(this, this.conference.mixer, (id) => this.listened(id));
  }

  /** A live call of this B2BUA by its id, as call listening sees it. */
  private listened(id: string) {
    for (const { call } of this.byCallId.values()) {
      if (call.id !== id || call.state === 'ended') continue;
      const session = this.media.session(call);
      return { id, state: call.state, caller: call.callerName, callee: call.calleeName, session };
    }
    return undefined;
  }

  get log() {
    return this.services.log;
  }

  respond(
    tx: ServerTransaction,
    req: SipRequest,
    status: number,
    reason?: string,
    headers: SipHeader[] = [],
    body?: { type: string; data: Buffer },
    toTag?: string,
  ): void {
    try {
      respondTo(this.services, tx, req, status, reason, headers, body, toTag);
    } catch (e) {
      this.log.debug({ err: String(e) }, 'SIP response not sent');
    }
  }

  /** Our Contact for a transport. */
  contactFor(t: SipTransport): string {
    const l = this.stack.localAddress(t);
    const host = l ? uriHostPart(l.host) : '127.0.0.1';
    return `<sip:${host}:${l?.port ?? 5060}${t === 'udp' ? '' : `;transport=${t}`}>`;
  }

  /** Our domain in From/To: sipdomain, else the local address of the transport. */
  domain(t: SipTransport): string {
    const l = this.stack.localAddress(t);
    return this.services.config.options.sipdomain || (l ? uriHostPart(l.host) : '127.0.0.1');
  }

  /** A SIP URI of ours for a user or number. */
  ourUri(user: string, t: SipTransport): string {
    return `sip:${escapeUser(user)}@${this.domain(t)}`;
  }

  setState(c: Call, s: 3 | 4 | null): void {
    for (const p of c.parties) this.sip.setCallState(p, s);
  }

  /** Route set of a request we answer as UAS (Record-Route in order). */
  uasRoutes(req: SipRequest): string[] {
    return getHeaders(req, 'Record-Route');
  }
}
