/**
 * Live calls: the registry of calls in progress, their credit reservations (in the database), persistence in
 * tb_livecalls (crash safety) and the one place a finished call is billed (CdrService.recordCall).
 *
 * Used by the B2BUA (src/sip/calls/) and by call control (src/sip/callcontrol: callback / p2p, one reservation per leg,
 * leg 'a' / 'b' with the same callid).
 *
 *   const live = new LiveCalls(services);             // one per server, built by src/server.ts (services.liveCalls)
 *   const r = await live.reserve({ callid, leg, userId, caller, callee, route, rate });
 *   if (!r.ok) → refuse the call with r.status / r.reason (a CDR with cost 0 and that reason is already written)
 *   live.setState(callid, leg, 'ringing');            // optional, for quickstat / info
 *   live.connected(callid, leg, { onMaxDuration: () => hangUpBothLegs() });  // starts the maxduration cut timer
 *   … on BYE / failure: await live.finish(callid, leg, { reason })          // one CDR, charged once, row deleted
 *
 * Reservation model: one tb_reservations row per rated call leg, in the database (domain/billing/reservations.ts),
 * so the calls of every process and node of an account share one budget: available = credit − Σ reserved;
 * maxduration = maxDuration(available, rate) and the call reserves the cost of that maxduration, in the same
 * transaction as its tb_livecalls row. Parallel calls of an account never reserve more than its balance together,
 * each is cut at its own maxduration, and no debit (transfer, negative addcredit, SQL) can spend reserved credit
 * (the database refuses it). A call that cannot afford its first billed block is refused (402). The CDR charge
 * releases the reservation in its transaction (CdrService.recordCall). reservedFor() sums this process's calls.
 *
 * Crash safety: a row per live call leg in tb_livecalls (with the owning `node`), written at reserve (state
 * 'setup'), at connect ('connected', connect_at) and refreshed (updated_at, and the reservations' expires_at) every
 * `heartbeatMs` (default 10 s) by ONE interval for all calls. recover() (call once at start, after the SIP server
 * started) records the CDR of every leftover row of this node, and of any node that stopped refreshing its rows
 * for `staleMs`, from connect_at .. updated_at (capped at maxduration), releases its reservation and deletes the
 * row; recordCall is idempotent on (callid, leg), so a repeated recovery charges nothing twice.
 *
 * tb_livecalls.callid is the primary key: a leg row is stored under `callid` for leg '' and `callid/leg` else.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import type { DomainServices } from '../deps.js';
import type { Rate } from '../rating/rate.js';
import { rateCall } from '../rating/rate.js';
import type { CallInput, RecordedCall } from '../billing/cdrs.js';
import { connectionFault } from '../errors.js';
import { CdrRetry } from './cdrretry.js';
import { Reservations, type AccountView, type Refusal } from '../billing/reservations.js';
import { freeRateFor } from './charging.js';
import { aliveNodes, recoverLeftovers } from './recovery.js';
import type {
  CallStats,
  FinishInput,
  LiveCall,
  LiveCallsOptions,
  LiveState,
  Reservation,
  ReservationPlan,
  ReserveInput,
} from './types.js';

export type * from './types.js';

interface Entry extends LiveCall {
  timer?: NodeJS.Timeout;
  onMaxDuration?: () => void;
}

const keyOf = (callid: string, leg: string) => (leg ? `${callid}/${leg}` : callid);

export class LiveCalls {
  private readonly calls = new Map<string, Entry>();
  private readonly reservedBy = new Map<number, number>();
  /** keys being reserved (between the duplicate check and the committed rows) */
  private readonly pending = new Set<string>();
  private readonly reservations: Reservations;
  /** CDRs the database did not take (it was unreachable), written again until it does */
  readonly retry: CdrRetry;
  /** name of this node in tb_livecalls / tb_reservations ('' for a single node) */
  readonly node: string;
  /** a row another node has not refreshed for this long belongs to a dead node (recover() bills it) */
  readonly staleMs: number;
  private readonly now: () => number;
  private heartbeat?: NodeJS.Timeout;
  private attempted = 0;
  private answered = 0;
  private endedAnswered = 0;
  private endedSeconds = 0;
  readonly heartbeatMs: number;
  readonly maxCallSeconds: number;
  /** listeners called when a call ends (after its CDR) */
  onEnded?: (c: LiveCall, r: RecordedCall | undefined) => void;
  /** hang-up hooks by key (the signalling layer registers one per call, used by disccall) */
  private readonly hangups = new Map<string, (reason: string) => void>();

  constructor(
    private readonly services: DomainServices,
    opts: LiveCallsOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.heartbeatMs = opts.heartbeatMs ?? 10_000;
    this.maxCallSeconds = opts.maxCallSeconds ?? 7200;
    this.node = opts.node ?? '';
    this.staleMs = opts.staleMs ?? 3 * this.heartbeatMs;
    this.reservations = new Reservations(services.storage.db, services.ledger);
    this.retry = new CdrRetry(services, opts.retryMs);
  }

  /** Starts the updated_at refresh interval (one for all calls); see recover() for the dead-node sweep. */
  start(): void {
    if (this.heartbeat) return;
    const beat = async () => {
      await this.refresh();
      // a named node (several on one database) also bills the calls of nodes that stopped refreshing theirs
      if (this.node) await this.recover({ deadOnly: true });
    };
    this.heartbeat = setInterval(
      () => void beat().catch((e) => this.services.log.warn({ err: String(e) }, 'livecalls refresh failed')),
      this.heartbeatMs,
    );
    this.heartbeat.unref();
  }

  stop(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    for (const c of this.calls.values()) if (c.timer) clearTimeout(c.timer);
    this.retry.stop();
  }

  /** Total reserved by this process's live calls of an account (micro-units; every node's: ledger.reserved). */
  reservedFor(userId: number): number {
    return this.reservedBy.get(userId) ?? 0;
  }

  /**
   * Reserves credit for a call (or leg) and registers it. Refusals (status 402 / 404 / 403 …) write a CDR with
   * cost 0 and the reason, so every attempt is on record.
   */
  async reserve(r: ReserveInput): Promise<Reservation> {
    const leg = r.leg ?? '';
    const key = keyOf(r.callid, leg);
    const startAt = r.startAt ?? this.now();
    if (this.calls.has(key) || this.pending.has(key))
      return { ok: false, status: 482, reason: 'call already in progress' };
    this.attempted++;
    this.pending.add(key);
    try {
      return await this.hold(r, key, leg, startAt);
    } finally {
      this.pending.delete(key);
    }
  }

  private async hold(r: ReserveInput, key: string, leg: string, startAt: number): Promise<Reservation> {
    const e: Entry = {
      key,
      callid: r.callid,
      leg,
      userId: r.userId,
      caller: r.caller,
      callee: r.callee,
      route: r.route ?? '',
      state: 'setup',
      startAt,
      connectAt: null,
      maxduration: this.maxCallSeconds,
      reserved: 0,
      rate: r.rate,
      parties: r.parties ?? [],
      capped: true,
    };
    const row = (trx: Kysely<Database>) =>
      trx
        .insertInto('tb_livecalls')
        .values({
          callid: key,
          userid: r.userId,
          caller: r.caller.slice(0, 128),
          callee: r.callee.slice(0, 128),
          route: e.route.slice(0, 128),
          leg,
          state: 'setup',
          start_at: startAt,
          connect_at: null,
          maxduration: e.maxduration,
          reserved: e.reserved,
          rate_json: r.rate ? JSON.stringify(r.rate) : '{}',
          updated_at: startAt,
          node: this.node,
        })
        .execute();
    let available = 0;
    if (r.rate) {
      const rate = r.rate;
      const plan = await this.reservations.hold(
        { userId: r.userId, callid: r.callid, leg, node: this.node, now: startAt, expiresAt: startAt + this.staleMs },
        (a) => this.plan(a, rate),
        async (trx, p) => {
          Object.assign(e, { maxduration: p.maxduration, reserved: p.amount });
          await row(trx);
        },
      );
      if ('refuse' in plan) return this.refuse(r, plan.refuse, plan.reason, startAt);
      e.capped = plan.capped;
      available = plan.available;
    } else {
      await row(this.services.storage.db);
    }
    this.calls.set(key, e);
    if (e.reserved) this.reservedBy.set(r.userId, this.reservedFor(r.userId) + e.reserved);
    return { ok: true, maxduration: e.maxduration, reserved: e.reserved, available, capped: e.capped };
  }

  /** The reservation a rated call gets from what its account has available (the maxduration arithmetic). */
  private plan(a: AccountView, rate: Rate): ReservationPlan | Refusal {
    if (a.currency !== rate.currency)
      return { refuse: 403, reason: `rate in ${rate.currency}, account in ${a.currency}` };
    const byCredit = this.services.rating.maxDuration(a.available, rate);
    if (byCredit <= 0) return { refuse: 402, reason: 'insufficient credit' };
    const maxduration = Math.min(byCredit, this.maxCallSeconds);
    const amount = Math.min(a.available, rateCall(maxduration, rate).cost);
    return { amount, maxduration, capped: byCredit > this.maxCallSeconds, available: a.available };
  }

  private async refuse(r: ReserveInput, status: number, reason: string, startAt: number): Promise<Reservation> {
    await this.recordRefusal(
      {
        callid: r.callid,
        leg: r.leg,
        userId: r.userId,
        caller: r.caller,
        callee: r.callee,
        route: r.route,
        rate: r.rate,
        startAt,
      },
      reason,
    );
    return { ok: false, status, reason };
  }

  /** Writes the CDR (cost 0) of a call refused before it was registered (unknown destination, blocked, no credit). */
  async recordRefusal(r: Omit<ReserveInput, 'parties'>, reason: string): Promise<RecordedCall | undefined> {
    const t = r.startAt ?? this.now();
    if (!r.userId) {
      // no account to charge (a call from a gateway to an unknown DID): the CDR records the refusal, nothing is billed
      const now = this.now();
      await this.services.storage.db
        .insertInto('tb_cdrs')
        .values({
          callid: r.callid,
          leg: r.leg ?? '',
          userid: 0,
          caller: r.caller,
          callee: r.callee,
          route: r.route ?? '',
          start_at: t,
          connect_at: null,
          end_at: now,
          duration: 0,
          billed: 0,
          cost: 0,
          currency: '',
          reason,
          created_at: now,
        })
        .onConflict((oc) => oc.columns(['callid', 'leg']).doNothing())
        .execute()
        .catch((e: unknown) =>
          this.services.log.warn({ err: String(e), callid: r.callid }, 'refused call CDR not written'),
        );
      return undefined;
    }
    try {
      // without a rate, recordCall would look one up and store "unrated: …" instead of the refusal reason
      const rate = r.rate ?? (await this.zeroRate(r.userId));
      return await this.services.cdrs.recordCall({
        callid: r.callid,
        leg: r.leg ?? '',
        userId: r.userId,
        caller: r.caller,
        callee: r.callee,
        route: r.route,
        startAt: t,
        connectAt: null,
        endAt: this.now(),
        duration: 0,
        reason,
        rate,
      });
    } catch (e) {
      this.services.log.warn({ err: String(e), callid: r.callid }, 'refused call CDR not written');
      return undefined;
    }
  }

  /** A zero rate in the account's currency (refusals and free calls are recorded with their own reason). */
  zeroRate(userId: number): Promise<Rate | undefined> {
    return freeRateFor(this.services.ledger, userId, 'free');
  }

  get(callid: string, leg = ''): LiveCall | undefined {
    return this.calls.get(keyOf(callid, leg));
  }

  /** By row key (callid or callid/leg) or by callid (first leg). */
  find(id: string): LiveCall[] {
    const direct = this.calls.get(id);
    if (direct) return [direct];
    return [...this.calls.values()].filter((c) => c.callid === id);
  }

  list(): LiveCall[] {
    return [...this.calls.values()];
  }

  setState(callid: string, leg: string, state: LiveState): void {
    const e = this.calls.get(keyOf(callid, leg));
    if (e && e.state !== 'connected' && e.state !== 'ending') e.state = state;
  }

  /** Changes the route recorded for a live call (e.g. the gateway a failover moved to); persisted. */
  setRoute(callid: string, leg: string, route: string): void {
    const e = this.calls.get(keyOf(callid, leg));
    if (!e) return;
    e.route = route.slice(0, 128);
    void this.services.storage.db
      .updateTable('tb_livecalls')
      .set({ route: e.route })
      .where('callid', '=', e.key)
      .execute()
      .catch(() => undefined);
  }

  /** Registers how the signalling layer ends this call (disccall). */
  onHangup(callid: string, leg: string, h: (reason: string) => void): void {
    this.hangups.set(keyOf(callid, leg), h);
  }

  /** Ends a live call through its signalling layer (BYE both legs; its finish() writes the CDR). False if unknown. */
  hangup(id: string, reason = 'disconnected by admin'): boolean {
    const list = this.find(id);
    let any = false;
    for (const c of list) {
      const h = this.hangups.get(c.key);
      if (h) {
        h(reason);
        any = true;
      } else {
        void this.finish(c.callid, c.leg, { reason });
        any = true;
      }
    }
    return any;
  }

  /**
   * The call was answered: persists connect_at and arms the maxduration cut (onMaxDuration is called once when
   * the call reaches maxduration; the caller then hangs up and calls finish()).
   */
  async connected(callid: string, leg = '', o: { at?: number; onMaxDuration?: () => void } = {}): Promise<void> {
    const e = this.calls.get(keyOf(callid, leg));
    if (!e || e.connectAt !== null) return;
    const at = o.at ?? this.now();
    e.connectAt = at;
    e.state = 'connected';
    this.answered++;
    e.onMaxDuration = o.onMaxDuration;
    e.timer = setTimeout(() => {
      e.timer = undefined;
      if (this.calls.get(e.key) !== e) return;
      if (e.onMaxDuration) e.onMaxDuration();
      else
        void this.finish(e.callid, e.leg, {
          reason: e.capped ? 'max call age reached' : 'maxduration reached',
          endAt: at + e.maxduration * 1000,
        });
    }, e.maxduration * 1000);
    e.timer.unref?.();
    await this.services.storage.db
      .updateTable('tb_livecalls')
      .set({ state: 'connected', connect_at: at, updated_at: at })
      .where('callid', '=', e.key)
      .execute()
      // the database is away: the call goes on (its CDR is written at its end, or queued until the database is back)
      .catch((err: unknown) => this.services.log.warn({ err: String(err), callid: e.key }, 'connect not stored'));
  }

  /**
   * Ends a call: one CDR (charged once) from connect to now (capped at maxduration), releases the reservation,
   * deletes the row. Idempotent: a second finish() of the same call answers undefined.
   */
  async finish(callid: string, leg = '', o: FinishInput = {}): Promise<RecordedCall | undefined> {
    const key = keyOf(callid, leg);
    const e = this.calls.get(key);
    if (!e || e.state === 'ending') return undefined;
    e.state = 'ending';
    if (e.timer) clearTimeout(e.timer);
    const endAt = o.endAt ?? this.now();
    const duration =
      e.connectAt === null ? 0 : Math.min(e.maxduration, Math.max(0, Math.ceil((endAt - e.connectAt - 50) / 1000)));
    if (e.connectAt !== null && duration > 0) {
      this.endedAnswered++;
      this.endedSeconds += duration;
    }
    let rec: RecordedCall | undefined;
    const input: CallInput = {
      ...{ callid: e.callid, leg: e.leg, userId: e.userId, caller: e.caller, callee: e.callee, route: e.route },
      ...{ startAt: e.startAt, connectAt: e.connectAt, rate: e.rate, endAt, duration, reason: o.reason },
    };
    try {
      rec = await this.services.cdrs.recordCall(input);
      await this.services.storage.db.deleteFrom('tb_livecalls').where('callid', '=', key).execute();
    } catch (err) {
      // the database is away: the CDR is written again until it answers; any other failure: recovery bills the row
      const why = connectionFault(err);
      if (why) this.retry.add(key, input, why);
      else this.services.log.error({ err: String(err), callid: key }, 'CDR of a finished call not written');
    } finally {
      this.drop(e);
    }
    this.onEnded?.(e, rec);
    return rec;
  }

  /** Forgets a call without a CDR (only for calls whose CDR is written elsewhere); releases the reservation. */
  async release(callid: string, leg = ''): Promise<void> {
    const key = keyOf(callid, leg);
    const e = this.calls.get(key);
    if (e) this.drop(e);
    await this.services.storage.db.transaction().execute(async (trx) => {
      await this.reservations.release(callid, leg, trx);
      await trx.deleteFrom('tb_livecalls').where('callid', '=', key).execute();
    });
  }

  private drop(e: Entry): void {
    if (this.calls.get(e.key) !== e) return;
    if (e.timer) clearTimeout(e.timer);
    this.calls.delete(e.key);
    this.hangups.delete(e.key);
    if (e.reserved) {
      const left = this.reservedFor(e.userId) - e.reserved;
      if (left > 0) this.reservedBy.set(e.userId, left);
      else this.reservedBy.delete(e.userId);
    }
  }

  /**
   * Refreshes updated_at of every call of this process (one UPDATE per 500) and the expiry of its reservations,
   * so other nodes see the calls alive (recovery bills a connected row up to updated_at, an unanswered one 0).
   */
  async refresh(): Promise<void> {
    const keys = [...this.calls.keys(), ...this.retry.keys()];
    const t = this.now();
    for (let i = 0; i < keys.length; i += 500) {
      await this.services.storage.db
        .updateTable('tb_livecalls')
        .set({ updated_at: t })
        .where('callid', 'in', keys.slice(i, i + 500))
        .execute();
    }
    const held = [...new Set([...this.calls.values()].filter((c) => c.reserved > 0).map((c) => c.callid))];
    await this.reservations.refresh(held, t + this.staleMs);
  }

  /**
   * Closes every leftover row of a previous run of this node (crash) and of any node that stopped refreshing its
   * rows for staleMs, billing each once and releasing its reservation (see recovery.ts). `deadOnly`: only other
   * nodes' stale rows (a survivor's periodic sweep).
   */
  async recover(o: { deadOnly?: boolean } = {}): Promise<{ closed: number; charged: number }> {
    const live = (key: string) => this.calls.has(key) || this.pending.has(key);
    // when the shared state cannot tell which nodes are alive, no other node is judged dead
    const alive = await aliveNodes(this.services, this.node);
    if (alive === null && o.deadOnly) return { closed: 0, charged: 0 };
    return recoverLeftovers(this.services, this.reservations, {
      node: this.node,
      stale: this.now() - this.staleMs,
      now: this.now(),
      deadOnly: o.deadOnly ?? false,
      live,
      alive: alive ?? new Set(),
    });
  }

  stats(): CallStats {
    const connected = [...this.calls.values()].filter((c) => c.state === 'connected').length;
    return {
      live: this.calls.size,
      connected,
      attempted: this.attempted,
      answered: this.answered,
      asr: this.attempted ? Math.round((this.answered / this.attempted) * 1000) / 10 : 0,
      acd: this.endedAnswered ? Math.round((this.endedSeconds / this.endedAnswered) * 10) / 10 : 0,
    };
  }

  /** Counts a call attempt refused before reserve() (unknown destination etc.) for ASR. */
  countAttempt(): void {
    this.attempted++;
  }
}
