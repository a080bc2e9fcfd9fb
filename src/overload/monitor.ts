/**
 * Overload control: every window measures the event-loop delay and utilisation. Past the delay threshold (two
 * windows) the SIP server and the API gateway refuse all new work (503 with Retry-After, ERROR) instead of queueing
 * it; below it, new INVITEs and REGISTERs pass a token bucket whose rate follows the loop's utilisation
 * (./admission.ts). Every 20 ms the kernel receive queue of our UDP socket is read (./queue.ts): while it says this
 * process is behind, new INVITEs and REGISTERs without credentials are refused first. In-dialog requests never
 * reach it: the callers only ask for new INVITEs, REGISTERs and API requests.
 */
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import { LoopUtilization, RateAdmission, type LoadSource } from './admission.js';
import { QueueState, UdpReceiveQueue, type QueueSource } from './queue.js';

export type { LoadSource } from './admission.js';
export type { QueueSource } from './queue.js';

/** Event-loop delay (ms) seen since the previous call; undefined when the loop did not turn in between. */
export interface DelaySource {
  sample(): number | undefined;
  close?(): void;
}

export type RefusalKind = 'sip' | 'api';

export interface OverloadStats {
  delay_ms: number;
  overloaded: boolean;
  threshold_ms: number;
  refused_sip: number;
  refused_api: number;
  /** loop utilisation of the last window (%) and the target of the rate control (0: off) */
  load_pct: number;
  load_target_pct: number;
  /** new SIP requests/s admitted while the rate control limits (0: open) */
  rate_limit: number;
  /** SIP refusals by the rate control (part of refused_sip) */
  refused_rate: number;
  /** bytes in our UDP receive queue: last reading, highest since the previous stats, the refusal threshold (0: off) */
  queue_bytes: number;
  queue_peak_bytes: number;
  queue_threshold_bytes: number;
  /** whether the queue control refuses new requests now, and its refusals (part of refused_sip) */
  queue_behind: boolean;
  refused_queue: number;
}

/**
 * What the SIP server and the gateway see: seconds to wait (Retry-After) when a request is refused, 0 to admit.
 * `continuation`: a SIP request answering our digest challenge (the rest of work already admitted).
 */
export interface OverloadGate {
  shed(kind: RefusalKind, continuation?: boolean): number;
  /** The queue control alone, for the transport's refusal before parsing; `refusedEarly` counts one. */
  queueWait?(): number;
  refusedEarly?(): void;
  stats(): OverloadStats;
  /** Watches the receive queue of our UDP socket on this port (the queue control). */
  watchUdpPort?(port: number): void;
}

const RESOLUTION_MS = 10;

/**
 * perf_hooks' histogram: the mean lateness of its timer (its own interval taken off). The mean, not a high
 * percentile: a saturated loop is late on every turn, while a process descheduled now and then on a busy host shows
 * a few long turns only.
 */
export class EventLoopDelay implements DelaySource {
  private readonly h: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });

  constructor() {
    this.h.enable();
  }

  sample(): number | undefined {
    const mean = this.h.count ? Math.max(0, this.h.mean / 1e6 - RESOLUTION_MS) : undefined;
    this.h.reset();
    return mean;
  }

  close(): void {
    this.h.disable();
  }
}

export interface OverloadOptions {
  /** Delay (ms) past which new work is refused; 0 disables. */
  thresholdMs: number;
  /** Sampling window (ms). */
  windowMs?: number;
  /** Seconds announced in Retry-After. */
  retryAfterS?: number;
  /** Target loop utilisation (%) of the rate control of new SIP requests; 0 (the default) disables it. */
  loadTargetPct?: number;
  /** Lowest rate (new SIP requests/s) the rate control goes down to. Default 20. */
  minRate?: number;
  /** Receive-queue bytes of our UDP socket from which new SIP requests are refused; 0 disables. */
  queueHighBytes?: number;
  /** Bytes at or below which the queue control stops refusing. Default a quarter of queueHighBytes. */
  queueLowBytes?: number;
  /** Interval (ms) of the receive-queue readings. Default 20. */
  queueMs?: number;
  source?: DelaySource;
  load?: LoadSource;
  queue?: QueueSource;
  now?: () => number;
}

export class OverloadMonitor implements OverloadGate {
  thresholdMs: number;
  readonly windowMs: number;
  readonly retryAfterS: number;
  private readonly now: () => number;
  private source?: DelaySource;
  private readonly injected: boolean;
  private load?: LoadSource;
  readonly admission: RateAdmission;
  readonly queueMs: number;
  readonly queue: QueueState;
  private queueSource?: QueueSource;
  private readonly udp = new UdpReceiveQueue();
  private timer?: NodeJS.Timeout;
  private queueTimer?: NodeJS.Timeout;
  private last = 0;
  private delay = 0;
  private previous = 0;
  private refused = { sip: 0, api: 0, rate: 0, queue: 0 };

  constructor(o: OverloadOptions) {
    this.thresholdMs = o.thresholdMs;
    this.windowMs = o.windowMs ?? 250;
    this.retryAfterS = o.retryAfterS ?? 2;
    this.now = o.now ?? Date.now;
    this.source = o.source;
    this.injected = !!o.source;
    this.load = o.load;
    this.queueSource = o.queue;
    this.queueMs = o.queueMs ?? 20;
    this.queue = new QueueState({ high: 0, low: 0, now: this.now });
    this.queueHighBytes = o.queueHighBytes ?? 0;
    if (o.queueLowBytes !== undefined) this.queue.low = o.queueLowBytes;
    this.admission = new RateAdmission({
      target: (o.loadTargetPct ?? 0) / 100,
      minRate: o.minRate,
      now: this.now,
    });
  }

  /** Target loop utilisation (%) of the rate control; 0 turns it off (applies at once). */
  set loadTargetPct(pct: number) {
    this.admission.target = pct / 100;
  }

  set minRate(rate: number) {
    this.admission.minRate = rate;
  }

  /** Receive-queue threshold (bytes) of the queue control, 0: off; refusing stops at a quarter of it. */
  set queueHighBytes(bytes: number) {
    this.queue.high = bytes;
    this.queue.low = Math.floor(bytes / 4);
    this.queue.rearm = Math.floor(bytes / 2);
    if (bytes <= 0) this.queue.behind = false;
  }

  watchUdpPort(port: number): void {
    this.udp.watch(port);
  }

  /** Starts sampling (a no-op timer cost when disabled: the threshold can be turned on by a reload). */
  start(): void {
    this.source ??= new EventLoopDelay();
    this.load ??= new LoopUtilization((a) => performance.eventLoopUtilization(a));
    this.last = this.now();
    this.timer = setInterval(() => this.tick(), this.windowMs);
    this.timer.unref();
    this.queueSource ??= this.udp;
    this.queueTimer = setInterval(() => this.queueTick(), this.queueMs);
    this.queueTimer.unref();
  }

  /** One reading of the receive queue (skipped while the queue control is off). */
  queueTick(): void {
    if (this.queue.high > 0) this.queue.reading(this.queueSource?.sample());
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.queueTimer) clearInterval(this.queueTimer);
    this.timer = this.queueTimer = undefined;
    if (!this.injected) this.source?.close?.();
    this.udp.close();
  }

  /** One window: the source's delay; when it saw no turn of the loop, how late this tick itself is. */
  tick(): void {
    const t = this.now();
    const late = this.last ? t - this.last - this.windowMs : 0;
    this.last = t;
    this.previous = this.delay;
    this.delay = Math.max(0, this.source?.sample() ?? late);
    // a window in which the loop did not turn at all was busy throughout
    this.admission.window(this.load ? (this.load.sample() ?? 1) : undefined);
  }

  /** Two windows in a row past the threshold: a lone stall (a GC pause, the process descheduled) sheds nothing. */
  get overloaded(): boolean {
    return this.thresholdMs > 0 && Math.min(this.delay, this.previous) > this.thresholdMs;
  }

  /**
   * A new SIP request while our receive queue is behind is refused unless it continues admitted work (it answers
   * our challenge): the refusal costs less than the request, so the queue drains.
   */
  shed(kind: RefusalKind, continuation = false): number {
    if (kind === 'sip' && !continuation && this.queue.behind) {
      this.refused.queue++;
      this.refused.sip++;
      return this.retryAfterS;
    }
    if (!this.overloaded) {
      if (kind === 'api' || this.admission.admit(continuation)) return 0;
      this.refused.rate++;
    }
    this.refused[kind]++;
    return this.retryAfterS;
  }

  /**
   * The queue control's answer for the transport's early refusal (a new INVITE/REGISTER without credentials seen in
   * the raw datagram): Retry-After seconds while our receive queue is behind, else 0. Counts nothing (`refusedEarly`).
   */
  queueWait(): number {
    return this.queue.behind ? this.retryAfterS : 0;
  }

  /** Counts one refusal the transport made on `queueWait`. */
  refusedEarly(): void {
    this.refused.queue++;
    this.refused.sip++;
  }

  stats(): OverloadStats {
    return {
      delay_ms: Math.round(this.delay),
      overloaded: this.overloaded,
      threshold_ms: this.thresholdMs,
      refused_sip: this.refused.sip,
      refused_api: this.refused.api,
      load_pct: Math.round(this.admission.load * 100),
      load_target_pct: Math.round(this.admission.target * 100),
      rate_limit: Number.isFinite(this.admission.rate) ? Math.round(this.admission.rate) : 0,
      refused_rate: this.refused.rate,
      queue_bytes: this.queue.last,
      queue_peak_bytes: this.takePeak(),
      queue_threshold_bytes: this.queue.high,
      queue_behind: this.queue.behind,
      refused_queue: this.refused.queue,
    };
  }

  private takePeak(): number {
    const p = this.queue.peak;
    this.queue.peak = this.queue.last;
    return p;
  }
}
