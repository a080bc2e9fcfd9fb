/**
 * The progress of a callback / p2p call, by its call id: initiated → ringing (leg a) → a-answered → ringing (leg b)
 * → answered → completed, or busy / no-answer / failed / cancelled with the SIP status and the cause. Kept in the
 * shared state (`state.ttl('callprogress')`, every node and worker answers for any call) for an hour after its last
 * change, and handed to `onChange` (events out) on every step.
 */
import type { TtlStore } from '../../state/index.js';
import type { BridgedCall, Leg } from './types.js';

export type ProgressState =
  'initiated' | 'ringing' | 'a-answered' | 'answered' | 'completed' | 'busy' | 'no-answer' | 'failed' | 'cancelled';

/** Final states: the call is over. */
export const FINAL_STATES: ReadonlySet<ProgressState> = new Set([
  'completed',
  'busy',
  'no-answer',
  'failed',
  'cancelled',
]);

export interface LegProgress {
  number: string;
  state: string;
  /** 200 once the leg answered, else the last final SIP status of its targets (0: none yet) */
  status: number;
  outcome: string;
}

export interface CallProgress {
  callid: string;
  kind: string;
  userId: number;
  username: string;
  state: ProgressState;
  /** the leg a ringing, busy, no-answer or failed state is about */
  leg: 'a' | 'b' | '';
  /** the SIP status of that leg's failure (0 when none) */
  sipStatus: number;
  cause: string;
  startedAt: number;
  updatedAt: number;
  answeredAt?: number;
  endedAt?: number;
  a: LegProgress;
  b: LegProgress;
  /** every step in order: state and when */
  history: Array<{ state: ProgressState; leg: string; at: number }>;
}

const KEEP_MS = 3600_000;

/** The SIP status of a leg's outcome text ("gw1: 486 Busy Here" → 486; a ring timeout → 480; unreachable → 503). */
export function statusOf(outcome: string | undefined): number {
  if (!outcome) return 0;
  const m = /: (\d{3})(?: |$)/.exec(outcome);
  if (m) return Number(m[1]);
  if (/no answer within/.test(outcome)) return 480;
  if (/no answer \(timeout\)/.test(outcome)) return 408;
  if (/unreachable/.test(outcome)) return 503;
  return 0;
}

/** How a leg that did not answer ended, from its SIP status. */
export function failureOf(outcome: string | undefined): ProgressState {
  const s = statusOf(outcome);
  if (s === 486 || s === 600) return 'busy';
  if (/no answer within/.test(outcome ?? '') || s === 480 || s === 408 || s === 487) return 'no-answer';
  return 'failed';
}

function legOf(l: Leg): LegProgress {
  // a leg that answered reports 200, whatever the targets it failed over from answered
  const status = l.connectAt ? 200 : statusOf(l.outcome);
  return { number: l.plan.callee, state: l.state, status, outcome: l.connectAt ? '' : (l.outcome ?? '') };
}

export class ProgressTracker {
  /** Called on every step (events out: the composition root wires it). */
  onChange?: (p: CallProgress) => void;
  private readonly current = new Map<string, CallProgress>();

  constructor(
    private readonly store: TtlStore,
    private readonly warn: (e: unknown) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a step of a call; nothing follows a final step (the in-process copy goes a minute after it). */
  step(call: BridgedCall, state: ProgressState, leg: 'a' | 'b' | '' = '', cause = ''): void {
    const t = this.now();
    let p = this.current.get(call.callid);
    if (!p) {
      p = {
        callid: call.callid,
        kind: call.kind,
        userId: call.userId,
        username: call.username,
        state,
        leg,
        sipStatus: 0,
        cause: '',
        startedAt: call.startAt,
        updatedAt: t,
        a: legOf(call.a),
        b: legOf(call.b),
        history: [],
      };
      this.current.set(call.callid, p);
    }
    if (FINAL_STATES.has(p.state)) return;
    // a repeated ringing of the same leg is not a step
    if (p.history.length && p.state === state && p.leg === leg) return;
    p.state = state;
    p.leg = leg;
    p.updatedAt = t;
    p.a = legOf(call.a);
    p.b = legOf(call.b);
    if (cause) p.cause = cause;
    if (leg) p.sipStatus = FINAL_STATES.has(state) ? p[leg].status : 0;
    if (state === 'answered') p.answeredAt = t;
    p.history.push({ state, leg, at: t });
    if (FINAL_STATES.has(state)) {
      p.endedAt = t;
      // kept a minute so that late steps of an ended call are recognised as such, then only the shared record
      setTimeout(() => this.current.delete(call.callid), 60_000).unref();
    }
    const snapshot = JSON.parse(JSON.stringify(p)) as CallProgress;
    void this.store.set(call.callid, JSON.stringify(snapshot), KEEP_MS).catch(this.warn);
    this.onChange?.(snapshot);
  }

  /** The progress of a call (this process's copy when it is running here, else the shared record). */
  async get(callid: string): Promise<CallProgress | undefined> {
    const mine = this.current.get(callid);
    if (mine) return mine;
    const raw = await this.store.get(callid);
    if (!raw) return undefined;
    try {
      return JSON.parse(raw) as CallProgress;
    } catch {
      return undefined;
    }
  }
}
