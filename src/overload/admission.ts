/**
 * Admission of new SIP work by rate: a token bucket on new INVITEs and REGISTERs whose rate is learned from the
 * measured service rate and adapted (AIMD) to the event-loop utilisation (the share of each window the loop was
 * busy). The loop delay alone misses this overload: a saturated loop that reads 32 datagrams per turn stays punctual
 * while the socket buffer behind it grows, so every message (ACK and BYE included) waits and the clients retransmit.
 *
 * - Open (no limit) until two windows in a row reach the target utilisation (a lone busy window is a stall).
 * - Then each window at or past the target sets the rate to what was admitted in it scaled by target / utilisation
 *   (the rate the process could have served at the target; at most 10% less per window): the backlog drains. It
 *   does not go below 80% of the highest rate recently admitted in a window under the target (decaying by half in
 *   about 17 s): a loop kept busy by other work (another process taking the CPU) does not spiral the rate down.
 * - A window clearly below the target (5 points) that refused something raises the rate by the headroom it shows
 *   (target / utilisation, between 2% and 25%, at least 1/s); eight windows in a row below it with nothing refused
 *   open the gate again.
 *
 * A request that continues admitted work (an INVITE or REGISTER answering our digest challenge) may borrow up to one
 * burst of tokens: the second INVITE of a call whose first got its 407 is not refused for lack of tokens a new call
 * would need, so refusals fall on new calls, not on half-made ones.
 */

/** Share of the last window (0…1) the event loop was busy; undefined when not measured. */
export interface LoadSource {
  sample(): number | undefined;
}

export interface AdmissionOptions {
  /** Target utilisation of the loop (0…1); 0 disables the rate control. */
  target: number;
  /** Lowest rate (requests/s) the control goes down to. */
  minRate?: number;
  now?: () => number;
}

const MAX_DECREASE = 0.9;
const GOOD_DECAY = 0.99;
const GOOD_FLOOR = 0.8;
const MIN_INCREASE = 1.02;
const MAX_INCREASE = 1.25;
const HYSTERESIS = 0.05;
const OPEN_AFTER = 8;
/** Tokens the bucket holds at most, as seconds of its rate (at least MIN_BURST). */
const BURST_S = 0.1;
const MIN_BURST = 4;

export class RateAdmission {
  target: number;
  minRate: number;
  private readonly now: () => number;
  /** requests/s; Infinity: open */
  private rateLimit = Infinity;
  private tokens = 0;
  private refilled = 0;
  private windowStart: number;
  private admitted = 0;
  private refusedInWindow = 0;
  private quiet = 0;
  private lastLoad = 0;
  private busyWindows = 0;
  /** the highest rate admitted in a window under the target, decaying */
  private goodRate = 0;

  constructor(o: AdmissionOptions) {
    this.target = o.target;
    this.minRate = o.minRate ?? 20;
    this.now = o.now ?? Date.now;
    this.windowStart = this.now();
  }

  /** The current limit (requests/s), Infinity when open. */
  get rate(): number {
    return this.rateLimit;
  }

  get load(): number {
    return this.lastLoad;
  }

  private get burst(): number {
    return Math.max(MIN_BURST, this.rateLimit * BURST_S);
  }

  /** True to admit one new request; `continuation`: it answers our challenge (may borrow one burst). */
  admit(continuation = false): boolean {
    if (this.target <= 0 || this.rateLimit === Infinity) {
      this.admitted++;
      return true;
    }
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.refilled) / 1000) * this.rateLimit);
    this.refilled = t;
    if (this.tokens >= 1 || (continuation && this.tokens >= 1 - this.burst)) {
      this.tokens--;
      this.admitted++;
      return true;
    }
    this.refusedInWindow++;
    return false;
  }

  /** Ends a window with the loop's utilisation in it (0…1). */
  window(load: number | undefined): void {
    const t = this.now();
    const secs = Math.max(0.001, (t - this.windowStart) / 1000);
    const admittedRate = this.admitted / secs;
    const refused = this.refusedInWindow;
    this.windowStart = t;
    this.admitted = 0;
    this.refusedInWindow = 0;
    if (load === undefined) return;
    this.lastLoad = load;
    this.goodRate = Math.max(this.goodRate * GOOD_DECAY, load < this.target ? admittedRate : 0);
    if (this.target <= 0) {
      this.rateLimit = Infinity;
      return;
    }
    this.busyWindows = load >= this.target ? this.busyWindows + 1 : 0;
    if (this.rateLimit === Infinity && this.busyWindows < 2) return;
    if (load >= this.target) {
      const served = admittedRate * Math.max(MAX_DECREASE, this.target / Math.max(load, 1e-6));
      const floor = Math.max(this.minRate, this.goodRate * GOOD_FLOOR);
      const next = Math.max(floor, this.rateLimit === Infinity ? served : Math.min(this.rateLimit, served));
      if (this.rateLimit === Infinity) {
        this.tokens = 0;
        this.refilled = t;
      }
      this.rateLimit = next;
      this.quiet = 0;
      return;
    }
    if (this.rateLimit === Infinity || load > this.target - HYSTERESIS) return;
    if (refused > 0) {
      const factor = Math.min(MAX_INCREASE, Math.max(MIN_INCREASE, this.target / Math.max(load, 1e-6)));
      this.rateLimit = Math.max(this.rateLimit + 1, this.rateLimit * factor);
      this.quiet = 0;
    } else if (++this.quiet >= OPEN_AFTER) {
      this.rateLimit = Infinity;
      this.quiet = 0;
    }
  }
}

/** performance.eventLoopUtilization between two samples. */
export class LoopUtilization implements LoadSource {
  private last: EventLoopUtilization;

  constructor(private readonly elu: (a?: EventLoopUtilization) => EventLoopUtilization) {
    this.last = elu();
  }

  sample(): number | undefined {
    const d = this.elu(this.last);
    this.last = this.elu();
    return d.idle + d.active > 0 ? d.utilization : undefined;
  }
}

export interface EventLoopUtilization {
  idle: number;
  active: number;
  utilization: number;
}
