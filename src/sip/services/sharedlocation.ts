/**
 * Registrations shared by every node of the switch: each user's bindings are one hash in `state.hash('location')`
 * (field: the contact key, value: the binding as JSON, expiring with it), written by compare-and-set so that two
 * nodes registering one user at once keep the CSeq order and the most-bindings limit. After every write the node
 * announces the user on the bus channel "location"; the other nodes re-read that user into their copy (the
 * LocationStore), so look-ups stay synchronous and in memory. At start, and after the bus was lost, a node reads
 * every user again; at start it also removes the stream bindings a previous run of itself left (their connections
 * died with it) — with `serve --workers N`, only those of its own connections (ids `w<k>:`): the other workers'
 * connections are alive.
 */
import { mutate, type Bus, type HashEntry, type HashStore } from '../../state/index.js';
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
  ) {}

  /** Subscribes, loads every node's bindings and becomes the store's writer. */
  async start(): Promise<void> {
    this.store.nodeId = this.node;
    this.unsubscribe = this.bus.subscribe(CHANNEL, (data, from) => {
      const u = (data as { u?: unknown })?.u;
      if (!from.self && typeof u === 'string') this.refresh(u);
    });
    this.bus.onRejoin(() => void this.loadAll().catch((e: unknown) => this.warn(e, 'reload')));
    await this.bus.ready();
    await this.loadAll(true);
    this.store.writer = this;
  }

  stop(): void {
    this.stopped = true;
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

  /** Read, plan, compare-and-set; on success this node's copy takes the result and the others are told. */
  private async write(username: string, plan: (old: Binding[]) => UpdateResult): Promise<UpdateResult> {
    const r = await mutate(this.hash, username, (fields) => {
      const res = plan(decode(fields));
      return { fields: res.ok ? encode(res.bindings) : null, result: res };
    });
    if (!r.ok) return r;
    if (this.reading.has(username)) this.reading.set(username, true);
    this.store.replace(username, r.bindings);
    void this.bus.publish(CHANNEL, { u: username }).catch((e: unknown) => this.warn(e, 'announce'));
    return r;
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
          this.store.replace(username, decode(snap.fields));
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
      batch.forEach((u, j) => snaps.set(u, decode(read[j]!.fields)));
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
