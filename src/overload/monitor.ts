/**
 * Overload control: measures the event-loop delay over a short window and, past a threshold, tells the SIP
 * server and the API gateway to refuse new work (503 with Retry-After, ERROR) instead of queueing it. In-dialog
 * requests never reach it: the callers only ask for new INVITEs, REGISTERs and API requests.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** Event-loop delay (ms) seen since the previous call. */
export interface DelaySource {
  sample(): number;
  close?(): void;
}

export type RefusalKind = 'sip' | 'api';

export interface OverloadStats {
  delay_ms: number;
  overloaded: boolean;
  threshold_ms: number;
  refused_sip: number;
  refused_api: number;
}

/** What the SIP server and the gateway see: seconds to wait (Retry-After) when a request is refused, 0 to admit. */
export interface OverloadGate {
  shed(kind: RefusalKind): number;
  stats(): OverloadStats;
}

const RESOLUTION_MS = 10;

/** perf_hooks' histogram: the 99th percentile of the timer's lateness (its own interval taken off). */
export class EventLoopDelay implements DelaySource {
  private readonly h: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });

  constructor() {
    this.h.enable();
  }

  sample(): number {
    const p99 = this.h.count ? this.h.percentile(99) / 1e6 - RESOLUTION_MS : 0;
    this.h.reset();
    return Math.max(0, p99);
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
  source?: DelaySource;
  now?: () => number;
}

export class OverloadMonitor implements OverloadGate {
  thresholdMs: number;
  readonly windowMs: number;
  readonly retryAfterS: number;
  private readonly now: () => number;
  private source?: DelaySource;
  private readonly injected: boolean;
  private timer?: NodeJS.Timeout;
  private last = 0;
  private delay = 0;
  private previous = 0;
  private refused = { sip: 0, api: 0 };

  constructor(o: OverloadOptions) {
    this.thresholdMs = o.thresholdMs;
    this.windowMs = o.windowMs ?? 250;
    this.retryAfterS = o.retryAfterS ?? 2;
    this.now = o.now ?? Date.now;
    this.source = o.source;
    this.injected = !!o.source;
  }

  /** Starts sampling (a no-op timer cost when disabled: the threshold can be turned on by a reload). */
  start(): void {
    this.source ??= new EventLoopDelay();
    this.last = this.now();
    this.timer = setInterval(() => this.tick(), this.windowMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (!this.injected) this.source?.close?.();
  }

  /**
   * One sample: the source's delay, or the lateness of this tick itself when larger (a blocked loop shows here at
   * once, before the histogram's own timer has run).
   */
  tick(): void {
    const t = this.now();
    const late = this.last ? t - this.last - this.windowMs : 0;
    this.last = t;
    this.previous = this.delay;
    this.delay = Math.max(this.source?.sample() ?? 0, late, 0);
  }

  /** Two windows in a row past the threshold: a lone stall (a GC pause, the process descheduled) sheds nothing. */
  get overloaded(): boolean {
    return this.thresholdMs > 0 && Math.min(this.delay, this.previous) > this.thresholdMs;
  }

  shed(kind: RefusalKind): number {
    if (!this.overloaded) return 0;
    this.refused[kind]++;
    return this.retryAfterS;
  }

  stats(): OverloadStats {
    return {
      delay_ms: Math.round(this.delay),
      overloaded: this.overloaded,
      threshold_ms: this.thresholdMs,
      refused_sip: this.refused.sip,
      refused_api: this.refused.api,
    };
  }
}
