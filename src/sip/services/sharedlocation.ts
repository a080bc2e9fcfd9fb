/**
 * Registrations shared by every node of the switch: each user's bindings are one hash in `state.hash('location')`
 * (field: the contact key, value: the binding as JSON, expiring with it), written by compare-and-set so that two
 * nodes registering one user at once keep the CSeq order and the most-bindings limit. After every write the node
 * announces the user, the write's stamp and the bindings on the bus channel "location"; the other nodes take them
 * into their copy (the LocationStore) unless they already hold that stamp or a later one, so look-ups stay
 * synchronous and in memory (an announcement without bindings makes them re-read the user). The stamp a node holds
 * for a user is also the version its next write of that user expects: a REGISTER is planned on the copy and written
 * in one compare-and-set, and only when that is refused (the copy was behind) read, planned and written again.
 * At start, and after the bus was lost, a node reads every user again; at start it also removes the stream bindings
 * a previous run of itself left (their connections died with it) — with `serve --workers N`, only those of its own
 * connections (ids `w<k>:`): the other workers' connections are alive.
 */
import { type Bus, type HashEntry, type HashStore } from '../../state/index.js';
import {
  contactKey,
  planRemoveAll,
  planUpdate,
  type Binding,
  type BindingWriter,
  type LocationStore,
  type UpdateInput,
  type UpdateResult,
} from './location.js';

const CHANNEL = 'location';

export interface SharedLocationLog {
  warn(obj: object, msg: string): void;
}

export class SharedLocation implements BindingWriter {
  /** Users being re-read; true when another announcement came meanwhile (read again). */
  private readonly reading = new Map<string, boolean>();
  /** Per user, the stamp of the latest write this copy holds (see HashStore.put). */
  private readonly stamps = new Map<string, number>();
  /** Users whose copy was empty at the last prune; their stamps go at the next one if it still is. */
  private emptyAtPrune = new Set<string>();
  private pruneTimer?: NodeJS.Timeout;
  private unsubscribe?: () => void;
  private stopped = false;

  constructor(
    private readonly store: LocationStore,
    private readonly hash: HashStore,
    private readonly bus: Bus,
    private readonly node: string,
    private readonly log: SharedLocationLog,
    private readonly maxPerUser = 16,
    private readonly now: () => number = Date.now,
    /** With workers, the connections of this process (the others' stream bindings are not stale at its start). */
    private readonly ownsConnection: (connId: string) => boolean = () => true,
    /** How often the stamps of users without bindings are dropped (a user's stamp goes after 1–2 periods empty). */
    private readonly pruneMs = 30_000,
  ) {}

  /** Stamps held (one per user with bindings, and users emptied within the last two prune periods). */
  stampCount(): number {
    return this.stamps.size;
  }

  /**
   * Drops the stamps of users whose copy has been empty for a whole prune period: a user who left costs nothing.
   * A stamp is only an ordering guard against late announcements (they arrive within milliseconds) and the version
   * a next write expects; without it the next write reads the user first, so dropping it is always safe.
   */
  prune(): void {
    const empty = new Set<string>();
    for (const u of this.stamps.keys()) {
      if (this.store.isOnline(u) || this.reading.has(u)) continue;
      if (this.emptyAtPrune.has(u)) this.stamps.delete(u);
      else empty.add(u);
    }
    this.emptyAtPrune = empty;
  }

  /** Subscribes, loads every node's bindings and becomes the store's writer. */
  async start(): Promise<void> {
    this.store.nodeId = this.node;
    this.unsubscribe = this.bus.subscribe(
      CHANNEL,
      (data) => {
        const d = data as { u?: unknown; v?: unknown; b?: unknown } | null;
        if (typeof d?.u !== 'string') return;
        if (typeof d.v === 'number' && Array.isArray(d.b)) this.apply(d.u, d.v, d.b as Binding[]);
        else this.refresh(d.u);
      },
      { othersOnly: true },
    );
    this.bus.onRejoin(() => void this.loadAll().catch((e: unknown) => this.warn(e, 'reload')));
    await this.bus.ready();
    await this.loadAll(true);
    this.store.writer = this;
    this.pruneTimer = setInterval(() => this.prune(), this.pruneMs);
    this.pruneTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.unsubscribe?.();
    this.store.writer = undefined;
  }

  update(username: string, callId: string, cseq: number, contacts: UpdateInput[]): Promise<UpdateResult> {
    return this.write(username, (old) =>
      planUpdate(old, callId, cseq, contacts, this.now(), this.maxPerUser, this.node),
    );
  }

  removeAll(username: string, callId: string, cseq: number): Promise<UpdateResult> {
    return this.write(username, (old) => planRemoveAll(old, callId, cseq));
  }

  async dropConnection(connId: string): Promise<void> {
    const users: string[] = [];
    for (const [u, list] of this.store.entries())
      if (list.some((b) => b.connId === connId && b.node === this.node)) users.push(u);
    for (const u of users) {
      await this.write(u, (old) => {
        const bindings = old.filter((b) => !(b.connId === connId && b.node === this.node));
        return { ok: true, bindings, added: [], removed: [] };
      }).catch((e: unknown) => this.warn(e, 'drop connection'));
    }
  }

  /**
   * Plan on the copy and compare-and-set against the stamp it holds; when that is refused (or the plan refuses on a
   * copy that may be behind), read, plan, compare-and-set until no other writer came in between. On success this
   * node's copy takes the result and the others are told.
   */
  private async write(username: string, plan: (old: Binding[]) => UpdateResult): Promise<UpdateResult> {
    const stamp = this.stamps.get(username);
    if (stamp !== undefined) {
      const old = this.store.all(username);
      const res = plan(old);
      if (res.ok) {
        const s = await this.hash.put(username, encode(res.bindings), old.length ? stamp : 0);
        if (s) return this.written(username, s, res);
      }
    }
    for (let i = 0; i < 16; i++) {
      const snap = await this.hash.read(username);
      const res = plan(decode(snap.fields));
      if (!res.ok) {
        this.apply(username, snap.version, decode(snap.fields));
        return res;
      }
      const s = await this.hash.put(username, encode(res.bindings), snap.version);
      if (s) return this.written(username, s, res);
      // another writer came first: back off a little (randomly, so that contenders spread out) and read again
      await new Promise((r) => setTimeout(r, Math.random() * 2 * (i + 1)));
    }
    throw new Error(`too many concurrent writers of "${username}"`);
  }

  private written(username: string, stamp: number, r: UpdateResult & { ok: true }): UpdateResult {
    if (this.reading.has(username)) this.reading.set(username, true);
    this.stamps.set(username, Math.max(stamp, this.stamps.get(username) ?? 0));
    this.store.replace(username, r.bindings);
    void this.bus
      .publish(CHANNEL, { u: username, v: stamp, b: r.bindings })
      .catch((e: unknown) => this.warn(e, 'announce'));
    return r;
  }

  /** Takes a user's bindings as of a write's stamp, unless the copy holds that write or a later one already. */
  private apply(username: string, stamp: number, bindings: Binding[]): void {
    if (stamp <= (this.stamps.get(username) ?? 0)) return;
    this.stamps.set(username, stamp);
    this.store.replace(username, bindings);
  }

  /** Re-reads one user into the copy; announcements that arrive during a read cause one more read. */
  private refresh(username: string): void {
    if (this.reading.has(username)) {
      this.reading.set(username, true);
      return;
    }
    this.reading.set(username, false);
    void (async () => {
      try {
        do {
          this.reading.set(username, false);
          const snap = await this.hash.read(username);
          if (this.stopped) return;
          if (snap.version) this.apply(username, snap.version, decode(snap.fields));
          else this.store.replace(username, []);
        } while (this.reading.get(username));
      } catch (e) {
        this.warn(e, 'read');
      } finally {
        this.reading.delete(username);
      }
    })();
  }

  private async loadAll(first = false): Promise<void> {
    const keys = await this.hash.keys();
    const seen = new Set(keys);
    // read in batches of concurrent reads (one round trip per batch, not per user)
    const snaps = new Map<string, Binding[]>();
    for (let i = 0; i < keys.length; i += 256) {
      const batch = keys.slice(i, i + 256);
      const read = await Promise.all(batch.map((u) => this.hash.read(u)));
      batch.forEach((u, j) => {
        snaps.set(u, decode(read[j]!.fields));
        const v = read[j]!.version;
        if (v > (this.stamps.get(u) ?? 0)) this.stamps.set(u, v);
      });
    }
    for (const [u, bindings] of snaps) {
      if (this.stopped) return;
      const isStale = (b: Binding) =>
        b.node === this.node && b.transport !== 'udp' && (b.connId === undefined || this.ownsConnection(b.connId));
      if (first && bindings.some(isStale))
        await this.write(u, (old) => ({
          ok: true,
          bindings: old.filter((b) => !isStale(b)),
          added: [],
          removed: [],
        }));
      else this.store.replace(u, bindings);
    }
    for (const [u] of [...this.store.entries()]) if (!seen.has(u)) this.store.replace(u, []);
  }

  private warn(e: unknown, what: string): void {
    this.log.warn({ err: (e as Error)?.message ?? String(e) }, `shared location: ${what} failed`);
  }
}

function encode(bindings: Binding[]): Map<string, HashEntry> {
  return new Map(bindings.map((b) => [contactKey(b.contact), { value: JSON.stringify(b), expiresAt: b.expiresAt }]));
}

function decode(fields: Map<string, HashEntry>): Binding[] {
  const out: Binding[] = [];
  for (const e of fields.values()) {
    try {
      out.push(JSON.parse(e.value) as Binding);
    } catch {
      /* a field that is not a binding is ignored */
    }
  }
  return out;
}
