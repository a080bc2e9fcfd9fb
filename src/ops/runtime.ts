/**
 * The Node equivalents of the vendor's thread lists (threadlist/threads/threads2): this process (pid, worker of
 * `serve --workers N`, uptime, memory), its event loop (delay percentiles since the last reading, utilisation) and
 * the active handles and requests by kind (process.getActiveResourcesInfo(): timers, sockets, file handles…).
 */
import { monitorEventLoopDelay, performance, type IntervalHistogram, type EventLoopUtilization } from 'node:perf_hooks';

export interface LoopReading {
  delay_p50_ms: number;
  delay_p99_ms: number;
  delay_max_ms: number;
  /** share of the time the loop was busy since the last reading, percent */
  utilisation_pct: number;
  since_ms: number;
}

export class RuntimeProbe {
  private readonly hist: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private elu: EventLoopUtilization = performance.eventLoopUtilization();
  private since = Date.now();

  start(): void {
    this.hist.enable();
  }

  stop(): void {
    this.hist.disable();
  }

  /** Event-loop figures since the previous reading (then starts a new window). */
  loop(): LoopReading {
    const ms = (ns: number) => Math.round((ns / 1e6) * 100) / 100;
    const now = performance.eventLoopUtilization();
    const d = performance.eventLoopUtilization(now, this.elu);
    const r: LoopReading = {
      delay_p50_ms: ms(this.hist.percentile(50) || 0),
      delay_p99_ms: ms(this.hist.percentile(99) || 0),
      delay_max_ms: ms(this.hist.max || 0),
      utilisation_pct: Math.round(d.utilization * 1000) / 10,
      since_ms: Date.now() - this.since,
    };
    this.hist.reset();
    this.elu = now;
    this.since = Date.now();
    return r;
  }
}

/** Active resources of this process by kind (Timeout, TCPWRAP, UDPWRAP, FSReqCallback, …), most first. */
export function activeResources(): Array<{ kind: string; count: number }> {
  const by = new Map<string, number>();
  for (const k of process.getActiveResourcesInfo()) by.set(k, (by.get(k) ?? 0) + 1);
  return [...by.entries()].map(([kind, count]) => ({ kind, count })).sort((a, b) => b.count - a.count);
}
