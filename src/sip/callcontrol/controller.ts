/**
 * Call control (RFC 3725 flow I): `callback` and `p2p`. The server is the UAC of both legs:
 *
 *   INVITE A (no SDP) → A: 200 (offer1) → INVITE B (offer1) → B: 200 (answer1) → ACK B, ACK A (answer1)
 *
 * Each leg is routed with RoutingService (./plan.ts) and placed by ./legs.ts. Both legs are billed to the requesting
 * account through LiveCalls: leg 'a' and leg 'b' with the same callid, one CDR each, charged once, rows in
 * tb_livecalls so a crash leaves nothing unbilled. The two-leg reservation and the bridge time are the billing
 * policy's (src/domain/calls/charging.ts: reserveBridge, bridgeSeconds). The confirmed dialogs of both legs are in
 * the SIP server's dialog table, which routes the parties' BYE, re-INVITE, UPDATE and INFO to ./indialog.ts (a new
 * session description — hold, resume, codec change — and INFO go to the other party; a refresh is answered here).
 *
 * Limits of flow I: A's 200 is not ACKed until B answers, and A gives up after 64×T1 (32 s) without ACK, so B may
 * ring at most `bRingMs` (default 28 s).
 */
import { randomBytes } from 'node:crypto';
import { callIdMarkerOf, escapeUser, generateTag } from '../message/index.js';
import type { User } from '../../domain/accounts/users.js';
import type { LiveCalls } from '../../domain/calls/index.js';
import { bridgeSeconds, reserveBridge } from '../../domain/calls/charging.js';
import { DomainError } from '../../domain/errors.js';
import type { DialogId } from '../dialog/table.js';
import { hasMedia, rejectingAnswer } from './sdp.js';
import { LegPlanner } from './plan.js';
import { LegCaller } from './legs.js';
import {
  CallControlError,
  type BridgedCall,
  type CallControlDeps,
  type CallControlKind,
  type CallControlOptions,
  type CallSummary,
  type Leg,
  type LegPlan,
  type RouterLike,
} from './types.js';
import { productToken } from '../product.js';
import { failureOf, ProgressTracker } from './progress.js';
import { InDialog } from './indialog.js';

export * from './types.js';

const idOf = (leg: Leg): DialogId => ({ callId: leg.callId, localTag: leg.localTag, remoteTag: leg.remoteTag ?? '' });

export class CallControl {
  readonly live: LiveCalls;
  readonly routing: RouterLike;
  private readonly calls = new Map<string, BridgedCall>();
  /** calls being set up (routing, reservation) per account */
  private readonly settingUp = new Map<number, number>();
  private readonly opts: Required<Omit<CallControlOptions, 'domain'>> & { domain?: string };
  private readonly planner: LegPlanner;
  private readonly legs: LegCaller;
  private stopped = false;
  /** Each call's progress by its call id (callstatus; events out through progress.onChange). */
  readonly progress: ProgressTracker;
  private readonly inDialog: InDialog;

  constructor(private readonly deps: CallControlDeps) {
    this.live = deps.live;
    this.routing = deps.routing;
    this.opts = { aRingMs: 30_000, bRingMs: 28_000, maxPerUser: 10, ...deps.options };
    this.planner = new LegPlanner(deps.services, deps.sip, deps.routing, deps.live, this.opts.domain);
    this.legs = new LegCaller(
      deps.sip.stack,
      this.log,
      () => productToken(deps.services),
      (call, leg) => this.confirmed(call, leg),
      (call, leg) => this.progress.step(call, 'ringing', leg.name),
    );
    this.inDialog = new InDialog(deps.sip.stack, this.legs, this.log, {
      end: (call, reason) => void this.end(call, reason),
      sdp: (call, from, body) => this.sdpFor(call, from, body),
    });
    this.progress = new ProgressTracker(deps.services.state.ttl('callprogress'), (e) =>
      this.log.warn({ err: String((e as Error)?.message ?? e) }, 'call progress not stored'),
    );
  }

  private get log() {
    return this.deps.services.log;
  }

  /** Routes one leg for the paying user. Throws CallControlError with the refusal. */
  planLeg(user: User, dialled: string, callerLabel: string): Promise<LegPlan> {
    return this.planner.planLeg(user, dialled, callerLabel);
  }

  // ------------------------------------------------------------------ start

  /**
   * Validates, routes both legs and reserves the credit, then starts the call in the background. Resolves with
   * the call (its callid) as soon as leg A is being called; throws CallControlError with a clear reason otherwise
   * (the refusal is on record as CDRs with cost 0 for both legs).
   */
  async start(kind: CallControlKind, user: User, aNumber: string, bNumber: string): Promise<BridgedCall> {
    if (this.stopped) throw new CallControlError('the SIP stack is stopping', 503);
    if (!aNumber || !bNumber) throw new CallControlError('both numbers are needed');
    // counted synchronously (calls being set up included), so parallel requests cannot pass the limit together
    let mine = this.settingUp.get(user.id) ?? 0;
    for (const c of this.calls.values()) if (c.userId === user.id) mine++;
    if (mine >= this.opts.maxPerUser)
      throw new CallControlError(
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

  private async setUp(kind: CallControlKind, user: User, aNumber: string, bNumber: string): Promise<BridgedCall> {
    const callid = `${callIdMarkerOf()}3pcc-${randomBytes(10).toString('hex')}`;
    const startAt = Date.now();
    let a: LegPlan;
    let b: LegPlan;
    try {
      a = await this.planLeg(user, aNumber, bNumber);
      b = await this.planLeg(user, bNumber, aNumber);
    } catch (e) {
      if (e instanceof CallControlError) await this.refuseBoth(callid, user, aNumber, bNumber, e.message, startAt);
      throw e;
    }
    if (a.username && a.username === b.username) {
      await this.refuseBoth(callid, user, a.callee, b.callee, 'both legs reach the same phone', startAt);
      throw new CallControlError('both numbers reach the same phone');
    }
    // the reservation of both legs (one per account): the billing policy decides which leg carries it
    let budget: number | undefined;
    try {
      budget = await reserveBridge(this.live, this.deps.services, {
        callid,
        userId: user.id,
        currency: user.currency,
        startAt,
        a: { ...a, caller: b.callee },
        b: { ...b, caller: a.callee },
      });
    } catch (e) {
      if (e instanceof DomainError && !(e instanceof CallControlError)) throw new CallControlError(e.message, e.status);
      throw e;
    }
    this.live.start();
    const mkLeg = (name: 'a' | 'b', p: LegPlan, fromLabel: string): Leg => {
      const first = p.targets[0]!;
      return {
        name,
        plan: p,
        callId: `${callid}-${name}`,
        localTag: generateTag(),
        remoteTag: null,
        localUri: `sip:${escapeUser(fromLabel)}@${this.planner.domainFor(first.target.transport)}`,
        remoteUri: first.to,
        remoteTarget: first.ruri,
        routes: [],
        target: first.target,
        fromDisplay: `"${fromLabel.replace(/["\\\r\n]/g, '')}"`,
        cseq: 0,
        state: 'idle',
      };
    };
    let resolveEnded!: () => void;
    const ended = new Promise<void>((r) => (resolveEnded = r));
    const call: BridgedCall = {
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
    this.progress.step(call, 'initiated');
    for (const leg of ['a', 'b'] as const)
      this.live.onHangup(callid, leg, (reason) => void this.hangup(callid, reason));
    void this.run(call).catch((e: unknown) => {
      this.log.warn({ err: String((e as Error)?.message ?? e), callid }, 'call control failed');
      void this.end(call, 'internal error');
    });
    return call;
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

  private async run(call: BridgedCall): Promise<void> {
    const a = call.a;
    const b = call.b;
    this.setState(a, 3);
    const ra = await this.legs.invite(call, a, undefined, this.opts.aRingMs);
    if (isEnded(call)) return;
    if (!ra) return this.end(call, `A leg ${a.outcome ?? 'failed'}`, `not placed: A leg ${a.outcome ?? 'failed'}`);
    a.got = Buffer.from(ra.body);
    await this.live.connected(call.callid, 'a', {
      at: a.connectAt,
      onMaxDuration: () => void this.hangup(call.callid, 'maxduration reached'),
    });
    if (isEnded(call)) return;
    this.progress.step(call, 'a-answered', 'a');
    if (!hasMedia(a.got)) {
      this.legs.ack(a, undefined);
      return this.end(call, 'A answered without an SDP offer', 'not placed: A answered without an SDP offer');
    }
    // the RTP relay decides on A's offer and where both parties are (rtprelay: off / nat / always)
    await this.deps.media?.prepareParties(
      call,
      [
        { signalIp: a.target.host, contact: a.remoteTarget, sdp: a.got },
        { signalIp: b.target.host, contact: b.remoteTarget },
      ],
      a.got,
      this.deps.sip.stack.localAddress(a.target.transport)?.host,
    );
    if (isEnded(call)) return;
    call.state = 'calling-b';
    this.setState(b, 3);
    const offer = this.sdpFor(call, 'a', a.got);
    const rb = await this.legs.invite(call, b, offer, this.opts.bRingMs);
    if (isEnded(call)) return;
    if (!rb) {
      this.legs.ack(a, rejectingAnswer(a.got));
      return this.end(call, `B leg ${b.outcome ?? 'failed'}`);
    }
    b.got = Buffer.from(rb.body);
    b.given = offer;
    this.legs.ack(b, undefined);
    if (!hasMedia(b.got)) {
      this.legs.ack(a, rejectingAnswer(a.got));
      return this.end(call, 'B answered without an SDP answer');
    }
    a.given = this.sdpFor(call, 'b', b.got);
    this.legs.ack(a, a.given);
    call.state = 'connected';
    this.deps.media?.connected(call, () => void this.hangup(call.callid, 'rtp timeout'));
    this.progress.step(call, 'answered');
    this.setState(a, 4);
    this.setState(b, 4);
    await this.live.connected(call.callid, 'b', {
      at: b.connectAt,
      onMaxDuration: () => void this.hangup(call.callid, 'maxduration reached'),
    });
    // the bridge ends when both legs together reach the credit available at set-up; free calls at the max call age
    const aElapsed = Math.ceil((b.connectAt! - a.connectAt!) / 1000);
    const x = bridgeSeconds(call.available, a.plan.rate, b.plan.rate, aElapsed, this.live.maxCallSeconds);
    if (x <= 0) return this.end(call, 'credit exhausted');
    call.bridgeTimer = setTimeout(() => void this.hangup(call.callid, 'maxduration reached'), x * 1000);
    call.bridgeTimer.unref?.();
  }

  /** A session description `from` gave, as the other party gets it (through the RTP relay when the call has one). */
  private sdpFor(call: BridgedCall, from: 'a' | 'b', body: Buffer): Buffer {
    return this.deps.media ? this.deps.media.sdp(call, from, body, 'application/sdp') : body;
  }

  private setState(leg: Leg, s: 3 | 4 | null): void {
    if (leg.plan.username) this.deps.sip.setCallState(leg.plan.username, s);
  }

  // ------------------------------------------------------------------ teardown

  /** Ends a call: BYE/CANCEL what is up, CDR of each leg (charged once), state cleared. Idempotent. */
  private async end(call: BridgedCall, reason: string, bReason?: string): Promise<void> {
    if (call.state === 'ended') return;
    const wasConnected = call.state === 'connected';
    call.state = 'ended';
    call.endReason = reason;
    if (call.bridgeTimer) clearTimeout(call.bridgeTimer);
    this.deps.media?.release(call);
    const endAt = Date.now();
    for (const leg of [call.a, call.b]) {
      if (leg.state === 'confirmed') {
        // a confirmed leg that was never ACKed (A while B rang) gets its ACK (with a rejecting answer) first
        if (!leg.ack)
          this.legs.ack(leg, leg.name === 'a' && leg.got && hasMedia(leg.got) ? rejectingAnswer(leg.got) : undefined);
        this.legs.bye(leg);
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
      this.endProgress(call, reason, wasConnected);
      this.calls.delete(call.callid);
      this.forgetLater(call.a);
      this.forgetLater(call.b);
      call.resolveEnded();
    }
  }

  /** The final step of a call's progress: completed, or why it did not connect (the leg and its SIP status). */
  private endProgress(call: BridgedCall, reason: string, wasConnected: boolean): void {
    if (wasConnected) return this.progress.step(call, 'completed', '', reason);
    // a party that answered without the session description the flow needs
    const noSdp = /^([AB]) answered without/.exec(reason);
    if (noSdp) return this.progress.step(call, 'failed', noSdp[1] === 'A' ? 'a' : 'b', reason);
    const failed = call.a.connectAt ? call.b : call.a;
    // ended from outside (disccall, shutdown) before a party refused: cancelled
    if (!failed.outcome) return this.progress.step(call, 'cancelled', failed.name, reason);
    this.progress.step(call, failureOf(failed.outcome), failed.name, failed.outcome);
  }

  /** Keeps an ended leg's dialog a little for late BYEs and 2xx retransmissions, then forgets it. */
  private forgetLater(leg: Leg): void {
    if (!leg.connectAt) return;
    const id = idOf(leg);
    const t = setTimeout(() => this.deps.sip.dialogs.remove(id), 32_000);
    t.unref?.();
  }

  /** Ends a live bridged call (disccall, maxduration). False when unknown. */
  async hangup(callid: string, reason = 'disconnected'): Promise<boolean> {
    const c = this.calls.get(callid);
    if (!c) return false;
    await this.end(c, reason);
    return true;
  }

  get(callid: string): BridgedCall | undefined {
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

  /** A leg's dialog is confirmed: the parties' requests in it are routed here by the dialog table. */
  private confirmed(call: BridgedCall, leg: Leg): void {
    this.deps.sip.dialogs.add(idOf(leg), (req, tx) => (tx ? this.inDialog.handle(call, leg, req, tx) : undefined));
    if (call.state === 'ended') this.forgetLater(leg);
  }
}

/** (not narrowed by TypeScript across awaits) */
function isEnded(c: BridgedCall): boolean {
  return c.state === 'ended';
}
