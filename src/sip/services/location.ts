/**
 * Location service: the registrar's bindings, per address-of-record (the username), in memory. Several bindings per
 * user (one per Contact URI, RFC 3261 §10.3), each with its expiry, the transport and source it was registered from
 * (for NAT: requests go back to where the REGISTER came from, reusing the connection), user agent and q.
 * Expired bindings are dropped by a periodic sweep and ignored by every look-up before that.
 *
 * With shared state (Redis) the bindings of every node live in `state.hash('location')` and this store is this
 * node's copy of all of them, kept in step over the bus (sharedlocation.ts writes through `writer`). Each binding
 * names the node that owns its transport and connection; a node reaches another node's phone directly only over
 * UDP (any node can send to the phone's address), so `lookup` (the bindings to send to) leaves out another node's
 * TCP/TLS/WS bindings while `all`, `isOnline` and `entries` (status, reguser) see every one.
 */
import type { SipTransport } from '../stack.js';
import { ownString } from '../message/index.js';

export interface Binding {
  /** Contact URI as sent (without the angle brackets and header params). */
  contact: string;
  /** Absolute expiry time (ms). */
  expiresAt: number;
  transport: SipTransport;
  srcIp: string;
  srcPort: number;
  connId?: string;
  userAgent: string;
  /** q value 0..1 (1 when absent). */
  q: number;
  callId: string;
  cseq: number;
  registeredAt: number;
  /** The node that owns the transport and connection (shared state only; undefined in one process). */
  node?: string;
}

export type BindingChange = { username: string; online: boolean; added?: Binding; removed?: Binding[] };

export interface UpdateInput {
  contact: string;
  /** Seconds; 0 removes. */
  expires: number;
  transport: SipTransport;
  srcIp: string;
  srcPort: number;
  connId?: string;
  userAgent: string;
  q: number;
}

export type UpdateResult =
  | { ok: true; bindings: Binding[]; added: Binding[]; removed: Binding[] }
  | { ok: false; status: number; reason: string };

/** Where registrations are written when they are shared (the in-process store is then a copy). */
export interface BindingWriter {
  update(username: string, callId: string, cseq: number, contacts: UpdateInput[]): Promise<UpdateResult>;
  removeAll(username: string, callId: string, cseq: number): Promise<UpdateResult>;
  /** Removes this node's bindings learnt over a connection that closed. */
  dropConnection(connId: string): Promise<void>;
}

/**
 * Bindings own their Contact and Call-ID (ownString: not slices keeping the whole REGISTER). Values that repeat
 * across bindings (source address, user agent): one string for all of them, from a table bounded to MAX_SHARED
 * entries (cleared when full, so a stream of distinct values costs nothing).
 */
const MAX_SHARED = 4096;
const shared = new Map<string, string>();
export function sharedString(s: string): string {
  const hit = shared.get(s);
  if (hit !== undefined) return hit;
  if (shared.size >= MAX_SHARED) shared.clear();
  const own = ownString(s);
  shared.set(own, own);
  return own;
}

/**
 * Normalised key of a Contact URI for "same binding" (RFC 3261 §10.3 step 7 compares URIs; case of scheme/host only).
 */
export function contactKey(uri: string): string {
  const at = uri.indexOf('@');
  const colon = uri.indexOf(':');
  if (colon < 0) return uri;
  const scheme = uri.slice(0, colon).toLowerCase();
  if (at < 0) return scheme + uri.slice(colon).toLowerCase();
  return scheme + uri.slice(colon, at + 1) + uri.slice(at + 1).toLowerCase();
}

export class LocationStore {
  private readonly map = new Map<string, Binding[]>();
  private timer?: NodeJS.Timeout;
  private count = 0;
  /** Called after every change of a user's bindings (registration, refresh excluded, removal, expiry). */
  onChange: (c: BindingChange) => void = () => undefined;
  /** With shared state: where registrations are written, and this node's id (set by the SIP server). */
  writer?: BindingWriter;
  nodeId?: string;
  /**
   * With the node relay (`siprelayport`): another node's stream binding, as this node reaches it (its connection id
   * naming that node); without it such bindings are left out of lookup().
   */
  viaNode?: (b: Binding) => Binding;

  /** Called by the sweep with the bindings that expired (the sip log). */
  onExpired?: (username: string, gone: Binding[]) => void;

  constructor(
    private readonly maxPerUser = 16,
    private readonly now: () => number = Date.now,
  ) {}

  start(sweepMs = 1000): void {
    this.timer ??= setInterval(() => this.sweep(), sweepMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Live bindings of a user this node can send to (expired ones filtered; with shared state, another node's
   * stream bindings left out, their connection is not here, unless the node relay reaches them: see viaNode).
   */
  lookup(username: string): Binding[] {
    const list = this.map.get(username);
    if (!list) return [];
    const t = this.now();
    const node = this.nodeId;
    if (node === undefined) return list.filter((b) => b.expiresAt > t);
    if (this.viaNode !== undefined)
      return list
        .filter((b) => b.expiresAt > t)
        .map((b) => (b.node === node || b.transport === 'udp' || !b.connId ? b : this.viaNode!(b)));
    return list.filter((b) => b.expiresAt > t && (b.node === node || b.transport === 'udp'));
  }

  /** Every live binding of a user, whichever node owns it. */
  all(username: string): Binding[] {
    const list = this.map.get(username);
    if (!list) return [];
    const t = this.now();
    return list.filter((b) => b.expiresAt > t);
  }

  isOnline(username: string): boolean {
    const list = this.map.get(username);
    if (!list) return false;
    const t = this.now();
    for (const b of list) if (b.expiresAt > t) return true;
    return false;
  }

  /** Every user with live bindings. */
  *entries(): IterableIterator<[string, Binding[]]> {
    const t = this.now();
    for (const [u, list] of this.map) {
      const live = list.filter((b) => b.expiresAt > t);
      if (live.length) yield [u, live];
    }
  }

  size(): { users: number; bindings: number } {
    return { users: this.map.size, bindings: this.count };
  }

  /**
   * Applies the Contacts of one REGISTER (RFC 3261 §10.3 steps 7-8) atomically: either all contacts are applied
   * or none (out-of-order CSeq → 500, too many bindings → 403).
   */
  update(username: string, callId: string, cseq: number, contacts: UpdateInput[]): UpdateResult {
    const t = this.now();
    const old = (this.map.get(username) ?? []).filter((b) => b.expiresAt > t);
    const r = planUpdate(old, callId, cseq, contacts, t, this.maxPerUser);
    if (!r.ok) return r;
    this.commit(username, r.bindings);
    if (r.added.length || r.removed.length)
      this.onChange({ username, online: r.bindings.length > 0, added: r.added[0], removed: r.removed });
    return r;
  }

  /** Removes every binding of a user (Contact: *), subject to the same Call-ID/CSeq rule. */
  removeAll(username: string, callId: string, cseq: number): UpdateResult {
    const t = this.now();
    const old = (this.map.get(username) ?? []).filter((b) => b.expiresAt > t);
    const r = planRemoveAll(old, callId, cseq);
    if (!r.ok) return r;
    this.commit(username, []);
    if (old.length) this.onChange({ username, online: false, removed: old });
    return r;
  }

  /** A REGISTER's contacts: through the shared writer when there is one, else here. */
  register(username: string, callId: string, cseq: number, contacts: UpdateInput[]): Promise<UpdateResult> {
    if (this.writer) return this.writer.update(username, callId, cseq, contacts);
    return Promise.resolve(this.update(username, callId, cseq, contacts));
  }

  /** Contact: * — through the shared writer when there is one, else here. */
  unregisterAll(username: string, callId: string, cseq: number): Promise<UpdateResult> {
    if (this.writer) return this.writer.removeAll(username, callId, cseq);
    return Promise.resolve(this.removeAll(username, callId, cseq));
  }

  /** A stream connection closed: its bindings go (through the shared writer when there is one). */
  connectionClosed(connId: string): void {
    if (this.writer) void this.writer.dropConnection(connId).catch(() => undefined);
    else this.dropConnection(connId);
  }

  /**
   * Sets a user's bindings as the shared store holds them (this node's copy); watchers are told when a contact came
   * or went, as for a local change.
   */
  replace(username: string, next: Binding[]): void {
    const t = this.now();
    const old = (this.map.get(username) ?? []).filter((b) => b.expiresAt > t);
    const live = next.filter((b) => b.expiresAt > t);
    const keys = new Set(live.map((b) => contactKey(b.contact)));
    const before = new Set(old.map((b) => contactKey(b.contact)));
    const added = live.filter((b) => !before.has(contactKey(b.contact)));
    const removed = old.filter((b) => !keys.has(contactKey(b.contact)));
    this.commit(username, live);
    if (added.length || removed.length) this.onChange({ username, online: live.length > 0, added: added[0], removed });
  }

  private commit(username: string, next: Binding[]): void {
    const prev = this.map.get(username);
    this.count += next.length - (prev?.length ?? 0);
    // a copy of exactly its length: a list grown by push() holds room for 16 more bindings
    if (next.length) this.map.set(username, next.slice());
    else this.map.delete(username);
  }

  /** Drops expired bindings; users who lose their last one are reported offline. */
  sweep(): void {
    const t = this.now();
    for (const [u, list] of this.map) {
      let expired = 0;
      for (const b of list) if (b.expiresAt <= t) expired++;
      if (!expired) continue;
      const live = list.filter((b) => b.expiresAt > t);
      const gone = list.filter((b) => b.expiresAt <= t);
      this.count -= expired;
      if (live.length) this.map.set(u, live);
      else this.map.delete(u);
      this.onChange({ username: u, online: live.length > 0, removed: gone });
      this.onExpired?.(u, gone);
    }
  }

  /** Removes bindings learnt over a connection that closed (stream transports). */
  dropConnection(connId: string): void {
    const node = this.nodeId;
    const mine = (b: Binding) => b.connId === connId && b.node === node;
    for (const [u, list] of this.map) {
      const live = list.filter((b) => !mine(b));
      if (live.length === list.length) continue;
      this.count -= list.length - live.length;
      if (live.length) this.map.set(u, live);
      else this.map.delete(u);
      this.onChange({ username: u, online: live.length > 0, removed: list.filter(mine) });
    }
  }
}

/**
 * RFC 3261 §10.3 steps 7-8 for one REGISTER on a user's live bindings `old`: either every contact is applied or none
 * (out-of-order CSeq → 500, too many bindings → 403). `node` is written into the new bindings.
 */
export function planUpdate(
  old: Binding[],
  callId: string,
  cseq: number,
  contacts: UpdateInput[],
  t: number,
  maxPerUser: number,
  node?: string,
): UpdateResult {
  const next = old.slice();
  const added: Binding[] = [];
  const removed: Binding[] = [];
  for (const c of contacts) {
    const key = contactKey(c.contact);
    const i = next.findIndex((b) => contactKey(b.contact) === key);
    const cur = i >= 0 ? next[i] : undefined;
    if (cur && cur.callId === callId && cseq <= cur.cseq)
      return { ok: false, status: 500, reason: 'Out of order CSeq for this binding' };
    if (c.expires === 0) {
      if (cur) {
        next.splice(i, 1);
        removed.push(cur);
      }
      continue;
    }
    const b: Binding = {
      contact: ownString(c.contact),
      expiresAt: t + c.expires * 1000,
      transport: c.transport,
      srcIp: sharedString(c.srcIp),
      srcPort: c.srcPort,
      connId: c.connId,
      userAgent: sharedString(c.userAgent),
      q: c.q,
      callId: cur && cur.callId === callId ? cur.callId : ownString(callId),
      cseq,
      registeredAt: cur && cur.callId === callId ? cur.registeredAt : t,
    };
    if (node !== undefined) b.node = node;
    if (cur) next[i] = b;
    else {
      next.push(b);
      added.push(b);
    }
  }
  if (next.length > maxPerUser)
    return { ok: false, status: 403, reason: `Too many registrations (at most ${maxPerUser} per user)` };
  return { ok: true, bindings: next, added, removed };
}

/** Contact: * on a user's live bindings: refused when one of them has the same Call-ID and a CSeq not below. */
export function planRemoveAll(old: Binding[], callId: string, cseq: number): UpdateResult {
  for (const b of old)
    if (b.callId === callId && cseq <= b.cseq)
      return { ok: false, status: 500, reason: 'Out of order CSeq for this binding' };
  return { ok: true, bindings: [], added: [], removed: old };
}
