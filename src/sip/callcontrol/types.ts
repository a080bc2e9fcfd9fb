/** The types of call control (callback / p2p): what it is built from, its calls and legs, and its refusal. */
import type { CallMedia } from '../media/index.js';
import type { SipRequest, SipResponse } from '../message/index.js';
import type { ClientTransaction, SipStack, SipTarget } from '../stack.js';
import type { DomainServices } from '../../domain/deps.js';
import { DomainError, type ErrorKind } from '../../domain/errors.js';
import type { Rate } from '../../domain/rating/rate.js';
import type { RouteDecision, RouteRequest } from '../../domain/routing/service.js';
import type { LiveCalls } from '../../domain/calls/index.js';
import type { Binding } from '../services/location.js';
import type { DialogTable } from '../dialog/table.js';
import type { DialogLeg } from '../dialog/uac.js';
import type { SipResolver } from '../trunks/resolve.js';

export type StackLike = Pick<SipStack, 'request' | 'localAddress'>;

export interface RouterLike {
  route(r: RouteRequest): Promise<RouteDecision>;
}

/** The part of SipServer call control uses. */
export interface SipServerLike {
  readonly stack: StackLike;
  readonly dialogs: DialogTable;
  location: { lookup(username: string): Binding[] };
  setCallState(username: string, state: 3 | 4 | null): void;
  /** RFC 3263 resolution of gateway host names (the B2BUA's); absent, a gateway's host is used as it is */
  resolver?: Pick<SipResolver, 'resolve'>;
}

export interface CallControlOptions {
  /**
   * How long leg A may ring (ms), default 30 000 (below the stack's Timer B of 32 s, which also runs while ringing).
   */
  aRingMs?: number;
  /** How long leg B may ring (ms), default 28 000 (flow I: A's unacknowledged 200 lasts 32 s). */
  bRingMs?: number;
  /** Calls one account may have in progress at once (default 10): bounds free on-net ringing too. */
  maxPerUser?: number;
  /** Display domain in From/To (default: sipdomain, else the local address). */
  domain?: string;
}

/** What call control is built from (src/server.ts; tests build their own). */
export interface CallControlDeps {
  services: DomainServices;
  sip: SipServerLike;
  routing: RouterLike;
  /** the live calls of the server (services.liveCalls) */
  live: LiveCalls;
  /** the RTP relay the B2BUA uses (one port pool): callback/p2p media under the same rtprelay rule */
  media?: CallMedia;
  options?: CallControlOptions;
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

const KIND: Record<number, ErrorKind> = { 402: 'insufficient', 403: 'denied', 404: 'notfound', 503: 'unavailable' };

/** A refusal of callback / p2p: the message is the ERROR text, `status` the SIP-style status. */
export class CallControlError extends DomainError {
  constructor(message: string, status = 400) {
    super(message, KIND[status] ?? (status >= 500 ? 'unavailable' : status === 400 ? 'input' : 'denied'), { status });
  }
}

export type LegState = 'idle' | 'calling' | 'early' | 'confirmed' | 'ended';

/** A leg of a bridged call: an outgoing dialog (we are the UAC) plus its state. */
export interface Leg extends DialogLeg {
  name: 'a' | 'b';
  plan: LegPlan;
  /** display name in From */
  fromDisplay: string;
  state: LegState;
  ct?: ClientTransaction;
  /** the session description this party holds (what we gave it) */
  given?: Buffer;
  /** the session description it gave us */
  got?: Buffer;
  ack?: SipRequest;
  connectAt?: number;
  /** the final status/reason when it failed */
  outcome?: string;
}

export type CallControlKind = 'callback' | 'p2p';

export interface BridgedCall {
  callid: string;
  kind: CallControlKind;
  userId: number;
  username: string;
  state: 'calling-a' | 'calling-b' | 'connected' | 'ended';
  a: Leg;
  b: Leg;
  startAt: number;
  /** credit reserved for both legs together (micro-units); undefined when both legs are free */
  available?: number;
  endReason?: string;
  /** a re-INVITE / UPDATE of one party is being passed to the other (one offer at a time) */
  offering?: boolean;
  bridgeTimer?: NodeJS.Timeout;
  ended: Promise<void>;
  resolveEnded: () => void;
}

export interface CallSummary {
  callid: string;
  kind: CallControlKind;
  user: string;
  state: string;
  a: string;
  b: string;
  a_state: string;
  b_state: string;
  reason: string;
}

/** How one INVITE attempt ended. */
export type InviteOutcome = SipResponse | 'timeout' | 'transport-error' | 'cancelled' | 'no-answer';
