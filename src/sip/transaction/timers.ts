// Timer services for the transaction layer.
//
// Precise timers (retransmissions A/E/G, the 100 Trying delay) use setTimeout. Long guard
// timers (B, D, F, H, I, J, K, L, M) are "coarse": they live on a hashed timing wheel driven by
// ONE interval, so tens of thousands of transactions per second cost no setTimeout each.
// FakeTimers is a deterministic implementation for unit tests (advance(ms)).

export interface TimerHandle {
  cancel(): void;
}

export interface TimerService {
  now(): number;
  /** Precise one-shot timer. */
  set(ms: number, fn: () => void): TimerHandle;
  /** Coarse one-shot timer (never early; may fire up to about one wheel tick late). */
  setCoarse(ms: number, fn: () => void): TimerHandle;
}

class WheelEntry implements TimerHandle {
  fn: (() => void) | null;
  rounds: number;
  constructor(fn: () => void, rounds: number) {
    this.fn = fn;
    this.rounds = rounds;
  }
  cancel(): void {
    this.fn = null;
  }
}

/** Hashed timing wheel: `slots` buckets of `resolution` ms; one interval drives it while entries exist. */
export class TimerWheel {
  private readonly slots: WheelEntry[][];
  private cursor = 0;
  private lastTick: number;
  private interval: NodeJS.Timeout | null = null;
  private live = 0;

  constructor(
    private readonly resolution = 100,
    slotCount = 512,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.slots = new Array(slotCount);
    for (let i = 0; i < slotCount; i++) this.slots[i] = [];
    this.lastTick = clock();
  }

  /** Number of scheduled entries (cancelled ones included until their slot is visited). */
  get size(): number {
    return this.live;
  }

  add(ms: number, fn: () => void): TimerHandle {
    const n = this.slots.length;
    if (this.interval === null) {
      this.lastTick = this.clock();
      this.interval = setInterval(() => this.tick(), this.resolution);
      this.interval.unref();
    }
    // Ticks counted from the last processed tick (so it never fires early), at least one.
    const elapsed = Math.max(0, this.clock() - this.lastTick);
    const ticks = Math.max(1, Math.ceil((ms + elapsed) / this.resolution));
    const e = new WheelEntry(fn, Math.floor((ticks - 1) / n));
    this.slots[(this.cursor + ticks) % n]!.push(e);
    this.live++;
    return e;
  }

  /** Advances the wheel to the current time (called by the interval; public for tests). */
  tick(): void {
    const now = this.clock();
    let due = Math.floor((now - this.lastTick) / this.resolution);
    if (due <= 0) return;
    this.lastTick += due * this.resolution;
    const n = this.slots.length;
    for (let k = 0; k < due; k++) {
      this.cursor = (this.cursor + 1) % n;
      const slot = this.slots[this.cursor]!;
      if (slot.length === 0) continue;
      let keep: WheelEntry[] | null = null;
      this.slots[this.cursor] = [];
      for (let i = 0; i < slot.length; i++) {
        const e = slot[i]!;
        if (e.fn === null) {
          this.live--;
          continue;
        }
        if (e.rounds > 0) {
          e.rounds--;
          (keep ??= []).push(e);
          continue;
        }
        const fn = e.fn;
        e.fn = null;
        this.live--;
        try {
          fn();
        } catch {
          /* a timer callback must not break the wheel */
        }
      }
      if (keep) for (const e of keep) this.slots[this.cursor]!.push(e);
    }
    if (this.live === 0 && this.interval !== null) {
      clearInterval(this.interval);
      this.interval = null;
    }
  }

  /** Drops every entry (they never fire); the wheel can be used again afterwards. */
  stop(): void {
    if (this.interval !== null) clearInterval(this.interval);
    this.interval = null;
    for (let i = 0; i < this.slots.length; i++) this.slots[i] = [];
    this.live = 0;
  }
}

/** Real timers: setTimeout for precise ones, a shared wheel for coarse ones. */
export class RealTimers implements TimerService {
  readonly wheel: TimerWheel;
  private readonly pending = new Set<NodeJS.Timeout>();
  constructor(resolution = 100) {
    this.wheel = new TimerWheel(resolution);
  }
  now(): number {
    return performance.now();
  }
  set(ms: number, fn: () => void): TimerHandle {
    const t: NodeJS.Timeout = setTimeout(() => {
      this.pending.delete(t);
      fn();
    }, ms);
    t.unref();
    this.pending.add(t);
    return {
      cancel: () => {
        clearTimeout(t);
        this.pending.delete(t);
      },
    };
  }
  setCoarse(ms: number, fn: () => void): TimerHandle {
    return this.wheel.add(ms, fn);
  }
  /** Cancels everything (stack shutdown). */
  stop(): void {
    for (const t of this.pending) clearTimeout(t);
    this.pending.clear();
    this.wheel.stop();
  }
}

interface FakeEntry {
  at: number;
  seq: number;
  fn: (() => void) | null;
}

/** Deterministic timers for tests: nothing fires until advance(). Coarse timers are exact here. */
export class FakeTimers implements TimerService {
  private t = 0;
  private seq = 0;
  private entries: FakeEntry[] = [];

  now(): number {
    return this.t;
  }
  set(ms: number, fn: () => void): TimerHandle {
    const e: FakeEntry = { at: this.t + ms, seq: this.seq++, fn };
    this.entries.push(e);
    return { cancel: () => void (e.fn = null) };
  }
  setCoarse(ms: number, fn: () => void): TimerHandle {
    return this.set(ms, fn);
  }
  /** Number of timers still pending. */
  get pending(): number {
    return this.entries.filter((e) => e.fn !== null).length;
  }
  /** Advances the clock by `ms`, firing due timers in time order (timers set by callbacks included). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let best: FakeEntry | null = null;
      for (const e of this.entries) {
        if (e.fn === null || e.at > end) continue;
        if (best === null || e.at < best.at || (e.at === best.at && e.seq < best.seq)) best = e;
      }
      if (best === null) break;
      this.t = best.at;
      const fn = best.fn!;
      best.fn = null;
      fn();
    }
    this.entries = this.entries.filter((e) => e.fn !== null);
    this.t = end;
  }
}
