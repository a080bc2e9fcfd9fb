/**
 * Billing policy of calls: who pays a leg, the free on-net rate, and the credit arithmetic of a bridged two-leg call
 * (callback / p2p). The SIP call layers (B2BUA, call control) ask this module; they decide no billing themselves.
 *
 * Who pays:
 *  - a call from a user: the caller;
 *  - a forwarded leg (callforward always / busy / noanswer): the forwarding user, at their rate;
 *  - a call from a gateway to a DID: the DID's owner (the called user; a free on-net call);
 *  - callback / p2p: the requesting account, both legs.
 *
 * Two legs, one reservation for both: leg b when rated (else leg a) "carries" the reservation (it reserves the
 * account's available credit); the other leg is registered free — an on-net leg at the zero rate, a rated number
 * without a rate (its CDR is rated from the number by CdrService) — unless the carrier's reservation was capped by
 * the max call age, then it reserves for itself from what is left. The bridge lasts while
 * cost_A(elapsed_A + x) + cost_B(x) ≤ reserved (maxBridgeSeconds), and at most to the max call age.
 */
import { DomainError } from '../errors.js';
import { rateCall, MAX_CALL_SECONDS, type Rate } from '../rating/rate.js';
import type { DomainServices } from '../deps.js';
import type { FinishInput, Reservation, ReserveInput } from './types.js';

/** The part of LiveCalls a two-leg reservation uses. */
export interface Reservations {
  reserve(r: ReserveInput): Promise<Reservation>;
  recordRefusal(r: Omit<ReserveInput, 'parties'>, reason: string): Promise<unknown>;
  finish(callid: string, leg?: string, o?: FinishInput): Promise<unknown>;
  reservedFor(userId: number): number;
}

// ------------------------------------------------------------------ who pays

/** The parties that may pay a leg (account ids; 0 or undefined when that party is not an account). */
export interface LegParties {
  /** the authenticated caller */
  caller?: number;
  /** the user whose forwarding rule placed this leg */
  forwarder?: number;
  /** the called user (for a call from a gateway to their DID) */
  calledUser?: number;
  /** the account that asked for a callback / p2p */
  requester?: number;
}

/** The account that pays a leg: requester, else forwarder, else caller, else the called user (DID); 0 for none. */
export function payerOf(p: LegParties): number {
  return p.requester || p.forwarder || p.caller || p.calledUser || 0;
}

// ------------------------------------------------------------------ the free rate

/**
 * A zero rate in an account's currency. On-net calls are free but still recorded as "normal" with it; refusals are
 * recorded with it too (destination 'free').
 */
export function freeRate(currency: string, destination = 'on-net'): Rate {
  return {
    id: 0,
    planId: 0,
    prefix: '',
    destination,
    price: 0,
    connectfee: 0,
    minduration: 0,
    increment: 1,
    currency,
    validFrom: null,
    validTo: null,
  };
}

/** The free rate in the currency of an account; undefined when the account does not exist. */
export async function freeRateFor(
  ledger: DomainServices['ledger'],
  userId: number,
  destination = 'on-net',
): Promise<Rate | undefined> {
  const b = await ledger.balance(userId);
  return b ? freeRate(b.currency, destination) : undefined;
}

// ------------------------------------------------------------------ two legs

/** Cost of `seconds` on a rate (0 for an unrated leg). */
export function legCost(seconds: number, rate: Rate | undefined): number {
  if (!rate || seconds <= 0) return 0;
  return rateCall(Math.ceil(seconds), rate).cost;
}

/**
 * The longest bridge time x (whole seconds, ≤ limit) such that leg A, already up for `aElapsed` seconds, and leg B
 * both stay affordable: cost_A(aElapsed + x) + cost_B(x) ≤ credit. Costs are monotonic in the duration, so a
 * binary search is exact. Returns 0 when not even one second fits.
 */
export function maxBridgeSeconds(
  credit: number,
  rateA: Rate | undefined,
  rateB: Rate | undefined,
  aElapsed = 0,
  limit = MAX_CALL_SECONDS,
): number {
  const fits = (x: number) => legCost(aElapsed + x, rateA) + legCost(x, rateB) <= credit;
  if (!fits(1)) return 0;
  let lo = 1;
  let hi = Math.max(1, Math.floor(limit));
  if (fits(hi)) return hi;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** The leg that carries the reservation of a two-leg call: b when rated, else a when rated, else none (both free). */
export function carrierOf(rateA: Rate | undefined, rateB: Rate | undefined): 'a' | 'b' | null {
  return rateB ? 'b' : rateA ? 'a' : null;
}

/**
 * How long the bridge may last once both legs are up (seconds): what the reservation pays for both legs together,
 * and at most the max call age counted from A's answer. `available` undefined: both legs are free.
 */
export function bridgeSeconds(
  available: number | undefined,
  rateA: Rate | undefined,
  rateB: Rate | undefined,
  aElapsed: number,
  maxCallSeconds: number,
): number {
  if (available === undefined) return Math.max(0, maxCallSeconds - aElapsed);
  return maxBridgeSeconds(available, rateA, rateB, aElapsed, maxCallSeconds - aElapsed);
}

/** One leg of a two-leg call as billing sees it. */
export interface BridgeLeg {
  /** username (on-net) or the normalised number: stored in the CDR */
  callee: string;
  /** the caller shown in its CDR */
  caller: string;
  route: string;
  rate?: Rate;
  /** the on-net party (free at the zero rate) */
  username?: string;
}

export interface BridgeInput {
  callid: string;
  userId: number;
  currency: string;
  startAt: number;
  a: BridgeLeg;
  b: BridgeLeg;
}

/**
 * Registers both legs of a two-leg call with LiveCalls (rows in tb_livecalls, one tb_reservations row for both, see
 * above). Answers the budget of the bridge (the sum reserved), undefined when both legs are free. Throws
 * DomainError (402 …) with both legs on record.
 */
export async function reserveBridge(
  live: Reservations,
  services: Pick<DomainServices, 'ledger' | 'rating'>,
  r: BridgeInput,
): Promise<number | undefined> {
  const carrier = carrierOf(r.a.rate, r.b.rate);
  const first = carrier ?? 'a';
  const other = first === 'a' ? 'b' : 'a';
  const legs = { a: r.a, b: r.b };
  const refusal = (reason: string, status: number) =>
    new DomainError(reason, status === 402 ? 'insufficient' : 'denied', { status });
  const reserve = (leg: 'a' | 'b', rate: Rate | undefined) => {
    const p = legs[leg];
    return live.reserve({
      callid: r.callid,
      leg,
      userId: r.userId,
      caller: p.caller,
      callee: p.callee,
      route: p.route,
      rate,
      startAt: r.startAt,
      parties: p.username ? [p.username] : [],
    });
  };
  const free = (p: BridgeLeg) => (p.username ? freeRate(r.currency) : undefined);
  const refuseOther = (reason: string) => {
    const p = legs[other];
    return live.recordRefusal(
      {
        callid: r.callid,
        leg: other,
        userId: r.userId,
        caller: p.caller,
        callee: p.callee,
        route: p.route,
        startAt: r.startAt,
      },
      reason,
    );
  };
  const short = 'insufficient credit for both legs';
  const r1 = await reserve(first, carrier ? legs[first].rate : free(legs[first]));
  if (!r1.ok) {
    await refuseOther(r1.reason);
    throw refusal(`${r1.reason} (${r1.status})`, r1.status);
  }
  let otherRate = free(legs[other]);
  const oRate = legs[other].rate;
  if (carrier && oRate && r1.capped) {
    // the carrier reserved only up to the max call age: the other rated leg reserves for itself from what is left
    const bal = await services.ledger.balance(r.userId);
    const left = bal ? bal.credit - live.reservedFor(r.userId) : 0;
    if (services.rating.maxDuration(Math.max(0, left), oRate) > 0) otherRate = oRate;
  }
  let budget = carrier ? r1.reserved : undefined;
  if (budget !== undefined && !otherRate && maxBridgeSeconds(budget, r.a.rate, r.b.rate) <= 0) {
    await live.finish(r.callid, first, { reason: short });
    await refuseOther(short);
    throw refusal(`${short} (402)`, 402);
  }
  const r2 = await reserve(other, otherRate);
  if (!r2.ok) {
    await live.finish(r.callid, first, { reason: r2.reason });
    throw refusal(`${r2.reason} (${r2.status})`, r2.status);
  }
  if (budget !== undefined && otherRate === oRate && oRate) budget += r2.reserved;
  if (budget !== undefined && maxBridgeSeconds(budget, r.a.rate, r.b.rate) <= 0) {
    await live.finish(r.callid, first, { reason: short });
    await live.finish(r.callid, other, { reason: short });
    throw refusal(`${short} (402)`, 402);
  }
  return budget;
}
