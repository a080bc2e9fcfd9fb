/** The types of live calls and credit reservations (LiveCalls, charging). */
import type { Rate } from '../rating/rate.js';

export type LiveState = 'setup' | 'ringing' | 'connected' | 'ending';

export interface ReserveInput {
  callid: string;
  /** '' (default) for a simple call, 'a' / 'b' for the legs of a callback / p2p */
  leg?: string;
  /** the account that pays */
  userId: number;
  caller: string;
  /** the normalised dialled number (or the username for an on-net call) */
  callee: string;
  route?: string;
  /** the rate the call is authorised at; undefined: free call, no reservation (maxduration = maxCallSeconds) */
  rate?: Rate;
  startAt?: number;
  /** username(s) whose status is 3/4 while this call lives (informational, for info/quickstat listings) */
  parties?: string[];
}

export type Reservation =
  | { ok: true; maxduration: number; reserved: number; available: number; capped: boolean }
  | { ok: false; status: number; reason: string };

/** What a rated call reserves (micro-units) and may last, sized from the account's available credit. */
export interface ReservationPlan {
  amount: number;
  maxduration: number;
  capped: boolean;
  available: number;
}

export interface LiveCall {
  callid: string;
  leg: string;
  userId: number;
  caller: string;
  callee: string;
  route: string;
  state: LiveState;
  startAt: number;
  connectAt: number | null;
  maxduration: number;
  reserved: number;
  rate?: Rate;
  parties: string[];
  /** true when maxduration is the max call age (maxCallSeconds), not the credit */
  capped: boolean;
  /** database-independent id shown by info / accepted by disccall: the row key (callid or callid/leg) */
  key: string;
}

export interface FinishInput {
  /** default now */
  endAt?: number;
  /** disconnect reason stored in the CDR (default normal / unanswered) */
  reason?: string;
}

export interface LiveCallsOptions {
  now?: () => number;
  /** updated_at refresh interval of connected calls (ms), default 10 000 */
  heartbeatMs?: number;
  /** cap of every call, seconds (the max call age that also ends calls whose party vanished); default 7200 */
  maxCallSeconds?: number;
  /** name of this node in tb_livecalls / tb_reservations (default '': a single node) */
  node?: string;
  /** rows another node has not refreshed for this long are a dead node's (default 3 × heartbeatMs) */
  staleMs?: number;
  /** how often a CDR the database did not take is written again (ms), default 2000 */
  retryMs?: number;
}

export interface CallStats {
  live: number;
  connected: number;
  attempted: number;
  answered: number;
  /** answered / attempted in % (0 when none) */
  asr: number;
  /** average duration of answered calls that ended, seconds */
  acd: number;
}
