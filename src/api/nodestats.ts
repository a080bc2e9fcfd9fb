/**
 * This process's counters for `info` and `quickstat`, announced to the other nodes through the shared state
 * (`state.nodes`) every `intervalMs`, live for `ttlMs` after each announcement: a node (or worker) that stops
 * announcing drops out of every node's view when its last announcement expires; a clean stop removes it at once.
 */
import type { Logger } from 'pino';
import type { NodeStats, State } from '../state/index.js';
import type { LiveCalls } from '../domain/calls/livecalls.js';
import type { SipServer } from '../sip/server.js';
import type { OverloadGate } from '../overload/monitor.js';

/** What the counters are read from (the services container, read when sampled: SIP is set after the start). */
export interface NodeSources {
  state: State;
  log: Pick<Logger, 'debug'>;
  startedAt: number;
  liveCalls: Pick<LiveCalls, 'stats'>;
  sip?: Pick<SipServer, 'location'>;
  overload?: Pick<OverloadGate, 'stats'>;
}

export interface NodeStatsOptions {
  /** Heartbeat of the announcement (default 5 s). */
  intervalMs?: number;
  /** Lifetime of one announcement (default three heartbeats). */
  ttlMs?: number;
  /** API requests handled by this process so far (the gateway's counter). */
  apiRequests: () => number;
  /** This process's worker index in `serve --workers N` (0: a single process). */
  worker: number;
}

export interface NodesView {
  self: NodeStats;
  /** Every live process of the switch (this one included, with its fresh counters). */
  nodes: NodeStats[];
  totals: Omit<NodeStats, 'id' | 'node' | 'worker' | 'pid' | 'startedAt' | 'at'> & { nodes: number };
  /** Why the other nodes are not listed (the shared state does not answer), else undefined. */
  error?: string;
}

export class NodeStatsPublisher {
  readonly id: string;
  readonly intervalMs: number;
  readonly ttlMs: number;
  private timer?: NodeJS.Timeout;
  private last: { at: number; attempted: number };
  private cps = 0;

  constructor(
    private readonly s: NodeSources,
    private readonly o: NodeStatsOptions,
  ) {
    this.id = o.worker ? `${s.state.nodeId}/${o.worker}` : s.state.nodeId;
    this.intervalMs = o.intervalMs ?? 5000;
    this.ttlMs = o.ttlMs ?? 3 * this.intervalMs;
    this.last = { at: s.startedAt, attempted: 0 };
  }

  /** The counters of this process now. */
  sample(now = Date.now()): NodeStats {
    const s = this.s;
    const calls = s.liveCalls.stats();
    const sip = s.sip;
    let registrations = 0;
    if (sip) {
      const own = sip.location.nodeId;
      for (const [, list] of sip.location.entries())
        for (const b of list) if (own === undefined || b.node === own) registrations++;
    }
    const o = s.overload?.stats();
    return {
      id: this.id,
      node: s.state.nodeId,
      worker: this.o.worker,
      pid: process.pid,
      startedAt: s.startedAt,
      at: now,
      registrations,
      liveCalls: calls.live,
      connectedCalls: calls.connected,
      callsPerSecond: this.cps,
      callsAttempted: calls.attempted,
      apiRequests: this.o.apiRequests(),
      overloadRefused: o ? o.refused_sip + o.refused_api : 0,
    };
  }

  /** One heartbeat: computes calls/s since the previous one and announces the counters. */
  async beat(now = Date.now()): Promise<void> {
    const attempted = this.s.liveCalls.stats().attempted;
    const dt = (now - this.last.at) / 1000;
    if (dt > 0) this.cps = Math.round(((attempted - this.last.attempted) / dt) * 10) / 10;
    this.last = { at: now, attempted };
    await this.s.state.nodes.announce(this.sample(now), this.ttlMs);
  }

  start(): void {
    if (this.timer) return;
    const run = () =>
      void this.beat().catch((e: unknown) =>
        this.s.log.debug({ err: String((e as Error)?.message ?? e) }, 'node counters not announced'),
      );
    run();
    this.timer = setInterval(run, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.s.state.nodes.remove(this.id).catch(() => undefined);
  }

  /** This process, every live one and the totals (for info / quickstat). */
  async view(): Promise<NodesView> {
    const self = this.sample();
    let others: NodeStats[] = [];
    let error: string | undefined;
    try {
      others = (await this.s.state.nodes.list()).filter((n) => n.id !== self.id);
    } catch (e) {
      error = `other nodes unknown: ${this.s.state.unavailable() ?? String((e as Error)?.message ?? e)}`;
    }
    const nodes = [self, ...others].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
    const sum = (f: (n: NodeStats) => number) => nodes.reduce((t, n) => t + f(n), 0);
    const totals = {
      nodes: nodes.length,
      registrations: sum((n) => n.registrations),
      liveCalls: sum((n) => n.liveCalls),
      connectedCalls: sum((n) => n.connectedCalls),
      callsPerSecond: Math.round(sum((n) => n.callsPerSecond) * 10) / 10,
      callsAttempted: sum((n) => n.callsAttempted),
      apiRequests: sum((n) => n.apiRequests),
      overloadRefused: sum((n) => n.overloadRefused),
    };
    return { self, nodes, totals, error };
  }
}

/** One row per live process (info's table; quickstat's per-node fields). */
export function nodeRow(n: NodeStats, now = Date.now()): Record<string, string | number> {
  return {
    id: n.id,
    node: n.node,
    worker: n.worker,
    pid: n.pid,
    uptime_s: Math.max(0, Math.floor((now - n.startedAt) / 1000)),
    registrations: n.registrations,
    live_calls: n.liveCalls,
    connected_calls: n.connectedCalls,
    calls_per_s: n.callsPerSecond,
    calls_attempted: n.callsAttempted,
    api_requests: n.apiRequests,
    overload_refused: n.overloadRefused,
    age_s: Math.max(0, Math.round((now - n.at) / 100) / 10),
  };
}

export const NODE_COLUMNS = Object.keys(nodeRow({} as NodeStats, 0));

/** This process's own counters and the switch's totals, as answer fields (prefix "total_" for the totals). */
export function nodeFields(v: NodesView): Record<string, string | number> {
  const t = v.totals;
  const f: Record<string, string | number> = {
    node_id: v.self.id,
    registrations: v.self.registrations,
    calls_per_s: v.self.callsPerSecond,
    api_requests: v.self.apiRequests,
    overload_refused: v.self.overloadRefused,
    nodes: t.nodes,
    total_registrations: t.registrations,
    total_live_calls: t.liveCalls,
    total_connected_calls: t.connectedCalls,
    total_calls_per_s: t.callsPerSecond,
    total_calls_attempted: t.callsAttempted,
    total_api_requests: t.apiRequests,
    total_overload_refused: t.overloadRefused,
  };
  if (v.error) f.nodes_error = v.error;
  return f;
}

/** A process's counters on one line ("k=v k=v …"), e.g. for quickstat's text and per-node fields. */
export function nodeLine(n: NodeStats, now = Date.now()): string {
  const { id: _id, ...rest } = nodeRow(n, now);
  return Object.entries(rest)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}
