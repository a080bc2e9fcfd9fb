/**
 * User status numbers of the API (status / verifyuser): 0 does not exist, 1 offline, 2 online (registered),
 * 3 calling, 4 speaking. 3 and 4 come from the call layer through `CallStates.set`.
 */
import type { Bus } from '../../state/index.js';
export const UserStatus = { missing: 0, offline: 1, online: 2, calling: 3, speaking: 4 } as const;
export type UserStatusNo = 0 | 1 | 2 | 3 | 4;

export const STATUS_NAMES: Record<UserStatusNo, string> = {
  0: 'unknown',
  1: 'offline',
  2: 'online',
  3: 'calling',
  4: 'speaking',
};

/**
 * Call states of users (3 calling, 4 speaking). In one process a map. Shared (`share`, with Redis): every change is
 * announced on the bus channel "callstate" and every node keeps the states of the others' calls; each node also
 * announces all its states every `heartbeatMs` and when it rejoins the bus, and another node's states that are not
 * announced again within three heartbeats are dropped (a node that died takes its call states with it).
 */
export class CallStates {
  private readonly calls = new Map<string, 3 | 4>();
  /** Other nodes' states: node → (username → state), with when that node last announced them. */
  private readonly remote = new Map<string, { at: number; states: Map<string, 3 | 4> }>();
  private bus?: Bus;
  private timer?: NodeJS.Timeout;
  private unsubscribe?: () => void;
  private heartbeatMs = 30_000;
  /** Called when another node's call state of a user changed. */
  onRemoteChange: (username: string) => void = () => undefined;

  constructor(private readonly now: () => number = Date.now) {}

  set(username: string, state: 3 | 4 | null): void {
    if (state === null) this.calls.delete(username);
    else this.calls.set(username, state);
    if (this.bus) void this.bus.publish(CHANNEL, { u: username, s: state }).catch(() => undefined);
  }

  get(username: string): 3 | 4 | undefined {
    const own = this.calls.get(username);
    if (own !== undefined || !this.remote.size) return own;
    const t = this.now();
    let best: 3 | 4 | undefined;
    for (const r of this.remote.values()) {
      if (t - r.at > 3 * this.heartbeatMs) continue;
      const s = r.states.get(username);
      if (s !== undefined && (best === undefined || s > best)) best = s;
    }
    return best;
  }

  /** Shares the states with the other nodes over the bus. */
  share(bus: Bus, heartbeatMs = 30_000): void {
    this.bus = bus;
    this.heartbeatMs = heartbeatMs;
    this.unsubscribe = bus.subscribe(CHANNEL, (data, from) => {
      if (!from.self) this.receive(from.node, data as Announcement);
    });
    const all = () => void bus.publish(CHANNEL, { all: [...this.calls] }).catch(() => undefined);
    bus.onRejoin(all);
    this.timer = setInterval(() => {
      all();
      this.expire();
    }, heartbeatMs);
    this.timer.unref();
    all();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    this.bus = undefined;
  }

  private receive(node: string, m: Announcement): void {
    let r = this.remote.get(node);
    if (!r) this.remote.set(node, (r = { at: this.now(), states: new Map() }));
    r.at = this.now();
    const changed = new Set<string>();
    if (Array.isArray(m.all)) {
      const next = new Map<string, 3 | 4>();
      for (const [u, s] of m.all) if (typeof u === 'string' && (s === 3 || s === 4)) next.set(u, s);
      for (const [u, s] of next) if (r.states.get(u) !== s) changed.add(u);
      for (const u of r.states.keys()) if (!next.has(u)) changed.add(u);
      r.states = next;
    } else if (typeof m.u === 'string') {
      if (m.s === 3 || m.s === 4) r.states.set(m.u, m.s);
      else r.states.delete(m.u);
      changed.add(m.u);
    }
    for (const u of changed) this.onRemoteChange(u);
  }

  private expire(): void {
    const t = this.now();
    for (const [node, r] of this.remote)
      if (t - r.at > 3 * this.heartbeatMs) {
        this.remote.delete(node);
        for (const u of r.states.keys()) this.onRemoteChange(u);
      }
  }
}

const CHANNEL = 'callstate';

interface Announcement {
  u?: unknown;
  s?: unknown;
  all?: Array<[string, unknown]>;
}

/** The number for a user: existence and registration known by the caller; a call state wins over "online". */
export function statusNumber(exists: boolean, online: boolean, call: 3 | 4 | undefined): UserStatusNo {
  if (!exists) return 0;
  if (call) return call;
  return online ? 2 : 1;
}
