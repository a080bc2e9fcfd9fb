/**
 * RFC 4028 session timers for the B2BUA (a caller that vanishes without BYE is cleaned up).
 *
 * Each leg of a call (A: caller ↔ server, B: server ↔ callee) negotiates its own session interval:
 * - A (we are the UAS): a Session-Expires below our Min-SE (option `minse`, default 90 s) is refused with
 *   422 + Min-SE. The granted interval is the smaller of the caller's and ours (option `sessionexpires`, default
 *   1800 s), never below either Min-SE. Refresher: the one the caller named in `refresher=`; when it did not name
 *   one and supports timers, WE refresh (an active probe of the caller); when it does not support timers
 *   (Session-Expires inserted by a proxy) the UAS — we — must refresh. A caller that neither supports timers nor
 *   sends Session-Expires gets no timer on its leg (the max call age still caps the call).
 * - B (we are the UAC): the INVITE offers `Supported: timer`, `Session-Expires: <sessionexpires>` and `Min-SE`;
 *   a 422 is answered once with the callee's Min-SE; the callee's 2xx decides (no Session-Expires in it: no timer
 *   on that leg).
 * - The refresher refreshes at half the interval with a re-INVITE carrying the SDP we last sent on that leg (an
 *   unchanged session version). A 2xx re-arms the timer; 408/481, a transaction timeout or a transport error end
 *   the call at once; no successful refresh by the end of the interval ends it too.
 * - When the other side refreshes (any re-INVITE of the leg, relayed through the B2BUA), its 2xx re-arms the timer
 *   (and our answer carries Session-Expires/Require again). Timers are negotiated at call setup only: a leg that got
 *   none then does not get one from a later re-INVITE.
 *   When it does not, the session expires `interval − min(32, interval/3)` seconds after the last refresh.
 * - Expiry of either leg ends the call: BYE both legs, CDR reason "session timer expired" (LiveCalls bills it).
 * UPDATE is not used (re-INVITE only). `sessionexpires=0` disables all of it.
 */
import { getHeader, getHeaders, type SipHeader, type SipRequest, type SipResponse } from '../message/index.js';
import { inDialogHeaders } from '../dialog/headers.js';
import type { DialogLeg } from '../dialog/uac.js';
import type { ClientTransaction, SipTransport } from '../stack.js';
import type { SipStackLike } from '../stack.js';

export type Refresher = 'uac' | 'uas';

export interface TimerConfig {
  /** our session interval, seconds; 0 disables session timers */
  sessionExpires: number;
  /** our Min-SE, seconds */
  minSe: number;
}

export interface SessionExpires {
  delta: number;
  refresher?: Refresher;
}

/** A negotiated timer of one leg, from our point of view. */
export interface LegTimerParams {
  interval: number;
  weRefresh: boolean;
}

export type UasNegotiation =
  | { kind: 'reject'; minSe: number; headers: SipHeader[] }
  | { kind: 'none' }
  | ({ kind: 'timer'; refresher: Refresher; headers: SipHeader[] } & LegTimerParams);

/** "1800;refresher=uac" → { delta: 1800, refresher: 'uac' }; null when absent or malformed. */
export function parseSessionExpires(v: string | undefined): SessionExpires | null {
  if (v === undefined) return null;
  const parts = v.split(';').map((s) => s.trim());
  if (!/^\d{1,10}$/.test(parts[0] ?? '')) return null;
  const delta = Number(parts[0]);
  if (!(delta > 0)) return null;
  const out: SessionExpires = { delta };
  for (const p of parts.slice(1)) {
    const [k, val] = p.split('=').map((s) => s.trim().toLowerCase());
    if (k === 'refresher' && (val === 'uac' || val === 'uas')) out.refresher = val;
  }
  return out;
}

/** "90" (parameters ignored) → 90; null when absent or malformed. */
export function parseMinSe(v: string | undefined): number | null {
  if (v === undefined) return null;
  const m = /^\s*(\d{1,10})\s*(;.*)?$/.exec(v);
  return m ? Number(m[1]) : null;
}

/** Whether the message lists the `timer` option tag in Supported or Require (compact forms included). */
export function supportsTimer(msg: { headers: readonly SipHeader[] }): boolean {
  return [...getHeaders(msg, 'Supported'), ...getHeaders(msg, 'Require')].some((h) =>
    h.split(',').some((t) => t.trim().toLowerCase() === 'timer'),
  );
}

/** The interval we offer: sessionexpires, but never below our own Min-SE. */
export function ourInterval(cfg: TimerConfig): number {
  return Math.max(cfg.sessionExpires, cfg.minSe);
}

/**
 * RFC 4028 §9: what we (the UAS) answer to an INVITE / re-INVITE. `preferUs`: the refresher we pick when the UAC
 * supports timers and left the choice to us (true: we refresh).
 */
export function negotiateUas(
  req: { headers: readonly SipHeader[] },
  cfg: TimerConfig,
  preferUs = true,
): UasNegotiation {
  if (cfg.sessionExpires <= 0) return { kind: 'none' };
  const se = parseSessionExpires(getHeader(req, 'Session-Expires'));
  if (se && se.delta < cfg.minSe) {
    return { kind: 'reject', minSe: cfg.minSe, headers: [{ name: 'Min-SE', value: String(cfg.minSe) }] };
  }
  const uacSupports = supportsTimer(req);
  if (!se && !uacSupports) return { kind: 'none' };
  const floor = Math.max(cfg.minSe, parseMinSe(getHeader(req, 'Min-SE')) ?? 0);
  const interval = Math.max(floor, se ? Math.min(se.delta, ourInterval(cfg)) : ourInterval(cfg));
  const refresher: Refresher = !uacSupports ? 'uas' : (se?.refresher ?? (preferUs ? 'uas' : 'uac'));
  const headers: SipHeader[] = [{ name: 'Session-Expires', value: `${interval};refresher=${refresher}` }];
  if (uacSupports) headers.unshift({ name: 'Require', value: 'timer' });
  headers.unshift({ name: 'Supported', value: 'timer' });
  return { kind: 'timer', interval, refresher, weRefresh: refresher === 'uas', headers };
}

/** RFC 4028 §7.2: the timer a 2xx to OUR (re-)INVITE sets; null when the answer has no Session-Expires. */
export function fromUacResponse(res: { headers: readonly SipHeader[] }): LegTimerParams | null {
  const se = parseSessionExpires(getHeader(res, 'Session-Expires'));
  if (!se) return null;
  // a 2xx must name the refresher; when it does not, we refresh (the safe choice: the session stays probed)
  return { interval: se.delta, weRefresh: (se.refresher ?? 'uac') === 'uac' };
}

/** Headers of an initial INVITE we send (leg B). */
export function offerHeaders(cfg: TimerConfig): SipHeader[] {
  if (cfg.sessionExpires <= 0) return [];
  return [
    { name: 'Supported', value: 'timer' },
    { name: 'Session-Expires', value: String(ourInterval(cfg)) },
    { name: 'Min-SE', value: String(cfg.minSe) },
  ];
}

/**
 * When the refresher refreshes and when the session expires, in ms after the last refresh (RFC 4028 §10: the
 * refresher at half the interval; the other side sends BYE min(32 s, interval/3) before the expiry; the refresher
 * gives up when its refresh has not succeeded by the expiry).
 */
export function schedule(p: LegTimerParams): { refreshMs?: number; expireMs: number } {
  const ms = p.interval * 1000;
  if (p.weRefresh) return { refreshMs: Math.round(ms / 2), expireMs: ms };
  return { expireMs: Math.round(ms - Math.min(32_000, ms / 3)) };
}

/** The dialog fields of a B2BUA leg the refresh re-INVITE needs (structurally the B2BUA's Leg). */
export type { DialogLeg } from '../dialog/uac.js';

export interface Body {
  type: string;
  data: Buffer;
}

/**
 * The body (with its Content-Type) of a message we sent, e.g. a B leg's INVITE / ACK or a client transaction's request.
 */
export function bodyOf(msg: { headers: readonly SipHeader[]; body: Buffer } | undefined): Body | undefined {
  const type = msg ? getHeader(msg, 'Content-Type') : undefined;
  return msg && msg.body.length && type ? { type, data: msg.body } : undefined;
}

/** The request a client transaction sent (the stack keeps it as `request`). */
export function sentRequest(ct: ClientTransaction | null): SipRequest | undefined {
  return (ct as (ClientTransaction & { request?: SipRequest }) | null)?.request;
}

export interface TimerScheduler {
  set(fn: () => void, ms: number): unknown;
  clear(h: unknown): void;
}

const realScheduler: TimerScheduler = {
  set(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clear(h) {
    clearTimeout(h as NodeJS.Timeout);
  },
};

interface LegState extends LegTimerParams {
  /** the SDP we last sent on this leg (set by relayed re-INVITEs), else read from sdpGet */
  sdp?: Body;
  sdpGet: () => Body | undefined;
  onExpire: () => void;
  refreshT?: unknown;
  expireT?: unknown;
  /** re-INVITE of ours in flight */
  refreshing?: ClientTransaction;
  done?: boolean;
}

export interface SessionTimersOptions {
  scheduler?: TimerScheduler;
  log?: { debug(o: object, m: string): void };
}

/** Per-B2BUA manager of the legs' timers (state in a WeakMap keyed by the leg object). */
export class SessionTimers {
  private readonly legs = new WeakMap<DialogLeg, LegState>();
  private readonly sched: TimerScheduler;
  /** refreshes sent / sessions expired (for tests and stats) */
  readonly counters = { refreshes: 0, expired: 0 };
  private readonly retried = new WeakSet<DialogLeg>();

  constructor(
    private readonly stack: Pick<SipStackLike, 'request'>,
    private readonly cfg: () => TimerConfig,
    private readonly contact: (t: SipTransport) => string,
    private readonly opts: SessionTimersOptions = {},
  ) {
    this.sched = opts.scheduler ?? realScheduler;
  }

  config(): TimerConfig {
    return this.cfg();
  }

  /** Headers of a 422 when the (re-)INVITE's Session-Expires is below our Min-SE; else null. */
  tooSmall(req: SipRequest): SipHeader[] | null {
    const n = negotiateUas(req, this.cfg());
    return n.kind === 'reject' ? n.headers : null;
  }

  /** Headers for the initial INVITE of a B leg. */
  offer(): SipHeader[] {
    return offerHeaders(this.cfg());
  }

  /**
   * A 422 to our INVITE on `leg`: rewrites leg.invite (next CSeq, Session-Expires/Min-SE raised to the callee's
   * Min-SE) and returns true when it should be re-sent (once per leg).
   */
  retry422(leg: DialogLeg, res: SipResponse): boolean {
    const min = parseMinSe(getHeader(res, 'Min-SE'));
    if (!leg.invite || this.retried.has(leg) || min === null || min > 86400) return false;
    const cur = parseSessionExpires(getHeader(leg.invite, 'Session-Expires'))?.delta ?? 0;
    if (min <= cur && cur > 0) return false;
    this.retried.add(leg);
    leg.cseq++;
    const headers = leg.invite.headers
      .filter(
        (h) =>
          getHeader({ headers: [h] }, 'Session-Expires') === undefined &&
          getHeader({ headers: [h] }, 'Min-SE') === undefined,
      )
      .map((h) =>
        getHeader({ headers: [h] }, 'CSeq') !== undefined ? { name: 'CSeq', value: `${leg.cseq} INVITE` } : h,
      );
    const at = headers.findIndex(
      (h) =>
        getHeader({ headers: [h] }, 'Content-Length') !== undefined ||
        getHeader({ headers: [h] }, 'Content-Type') !== undefined,
    );
    headers.splice(
      at < 0 ? headers.length : at,
      0,
      { name: 'Session-Expires', value: String(min) },
      { name: 'Min-SE', value: String(min) },
    );
    leg.invite = { ...leg.invite, headers };
    return true;
  }

  /**
   * The call is answered: arms A (negotiated from the caller's INVITE) and B (from the callee's 2xx). Returns the
   * headers of our 2xx to A. `sdpA`/`sdpB`: the SDP we last sent on each leg (for refreshes), read when needed.
   */
  connect(
    a: DialogLeg,
    aReq: SipRequest,
    b: DialogLeg,
    bRes: SipResponse,
    sdp: { a: () => Body | undefined; b: () => Body | undefined },
    onExpire: (leg: 'a' | 'b') => void,
  ): SipHeader[] {
    const cfg = this.cfg();
    if (cfg.sessionExpires <= 0) return [];
    const na = negotiateUas(aReq, cfg, true);
    if (na.kind === 'timer') {
      const sentToA = sdp.a(); // read now: what our 2xx to A carries
      this.arm(
        a,
        na,
        () => sentToA,
        () => onExpire('a'),
      );
    }
    const nb = fromUacResponse(bRes);
    if (nb) this.arm(b, nb, sdp.b, () => onExpire('b'));
    return na.kind === 'timer' ? na.headers : [];
  }

  /** Headers for a re-INVITE we relay on `leg` (keeps the negotiated interval and refresher). */
  requestHeaders(leg: DialogLeg): SipHeader[] {
    const s = this.legs.get(leg);
    if (!s || s.done) return [];
    return [
      { name: 'Supported', value: 'timer' },
      { name: 'Session-Expires', value: `${s.interval};refresher=${s.weRefresh ? 'uac' : 'uas'}` },
      { name: 'Min-SE', value: String(this.cfg().minSe) },
    ];
  }

  /**
   * A re-INVITE came in on `mine` (the other leg got `sent` relayed, answered by `res`). A 2xx refreshes both legs;
   * returns the headers for our response on `mine`.
   */
  reinvited(
    mine: DialogLeg,
    req: SipRequest,
    other: DialogLeg,
    res: SipResponse,
    sentToOther?: () => Body | undefined,
    sentToMine?: () => Body | undefined,
  ): SipHeader[] {
    if (res.status < 200 || res.status >= 300) return [];
    const so = this.legs.get(other);
    if (so && !so.done) {
      const b = sentToOther?.();
      if (b) so.sdp = b;
      this.rearm(other, fromUacResponse(res) ?? so);
    }
    // timers are negotiated at call setup: a leg without one stays without (no promise to refresh we would not keep)
    const sm = this.legs.get(mine);
    if (!sm || sm.done) return [];
    const n = negotiateUas(req, this.cfg(), sm.weRefresh);
    if (n.kind !== 'timer') return [];
    const b = sentToMine?.();
    if (b) sm.sdp = b;
    this.rearm(mine, n);
    return n.headers;
  }

  /** Stops the timers of a leg (call ended). */
  disarm(leg: DialogLeg | undefined): void {
    if (!leg) return;
    const s = this.legs.get(leg);
    if (!s) return;
    s.done = true;
    this.clear(s);
    this.legs.delete(leg);
  }

  /** The negotiated timer of a leg (tests, info). */
  params(leg: DialogLeg): LegTimerParams | undefined {
    const s = this.legs.get(leg);
    return s && !s.done ? { interval: s.interval, weRefresh: s.weRefresh } : undefined;
  }

  // ------------------------------------------------------------------ internals

  private arm(leg: DialogLeg, p: LegTimerParams, sdp: () => Body | undefined, onExpire: () => void): void {
    const old = this.legs.get(leg);
    if (old) this.clear(old);
    const s: LegState = { interval: p.interval, weRefresh: p.weRefresh, onExpire, sdpGet: sdp };
    this.legs.set(leg, s);
    this.start(leg, s);
  }

  private rearm(leg: DialogLeg, p: LegTimerParams): void {
    const s = this.legs.get(leg);
    if (!s || s.done) return;
    s.interval = p.interval;
    s.weRefresh = p.weRefresh;
    this.clear(s);
    this.start(leg, s);
  }

  private clear(s: LegState): void {
    if (s.refreshT !== undefined) this.sched.clear(s.refreshT);
    if (s.expireT !== undefined) this.sched.clear(s.expireT);
    s.refreshT = s.expireT = undefined;
  }

  private start(leg: DialogLeg, s: LegState): void {
    const { refreshMs, expireMs } = schedule(s);
    if (refreshMs !== undefined) s.refreshT = this.sched.set(() => this.refresh(leg, s), refreshMs);
    s.expireT = this.sched.set(() => this.expire(leg, s), expireMs);
  }

  private expire(leg: DialogLeg, s: LegState): void {
    if (s.done) return;
    s.done = true;
    this.clear(s);
    this.legs.delete(leg);
    this.counters.expired++;
    s.onExpire();
  }

  private sdpOf(s: LegState): Body | undefined {
    return s.sdp ?? s.sdpGet();
  }

  /** Sends the refresh re-INVITE (same SDP as last sent) and follows its answer. */
  private refresh(leg: DialogLeg, s: LegState): void {
    if (s.done) return;
    s.refreshT = undefined;
    const body = this.sdpOf(s);
    leg.cseq++;
    const cseq = leg.cseq;
    const dialog = (method: string, n: number): SipHeader[] => inDialogHeaders(leg, method, n);
    const headers = [
      ...dialog('INVITE', cseq),
      { name: 'Contact', value: this.contact(leg.target.transport) },
      { name: 'Supported', value: 'timer' },
      { name: 'Session-Expires', value: `${s.interval};refresher=uac` },
      { name: 'Min-SE', value: String(this.cfg().minSe) },
    ];
    if (body) headers.push({ name: 'Content-Type', value: body.type });
    headers.push({ name: 'Content-Length', value: String(body?.data.length ?? 0) });
    const req: SipRequest = {
      type: 'request',
      method: 'INVITE',
      uri: leg.remoteTarget,
      version: 'SIP/2.0',
      headers,
      body: body?.data ?? Buffer.alloc(0),
    };
    let ct: ClientTransaction;
    try {
      ct = this.stack.request(req, leg.target);
    } catch (e) {
      this.opts.log?.debug({ err: String(e) }, 'session refresh not sent');
      return this.expire(leg, s);
    }
    this.counters.refreshes++;
    s.refreshing = ct;
    const fail = () => {
      if (s.refreshing === ct) s.refreshing = undefined;
      this.expire(leg, s);
    };
    ct.on('final', (res: SipResponse) => {
      if (s.refreshing === ct) s.refreshing = undefined;
      if (res.status >= 200 && res.status < 300) {
        try {
          this.stack.request(
            {
              type: 'request',
              method: 'ACK',
              uri: leg.remoteTarget,
              version: 'SIP/2.0',
              headers: [...dialog('ACK', cseq), { name: 'Content-Length', value: '0' }],
              body: Buffer.alloc(0),
            },
            leg.target,
          );
        } catch {
          /* the peer retransmits its 2xx; the timer still runs */
        }
        if (!s.done) this.rearm(leg, fromUacResponse(res) ?? s);
      } else if (res.status === 408 || res.status === 481) fail();
      // other failures (491, 5xx…): the session still expires at the end of the interval unless refreshed
    });
    ct.on('timeout', fail);
    ct.on('transport-error', fail);
  }
}
