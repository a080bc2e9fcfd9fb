/**
 * The live nodes of the switch: each process (a node, or a worker of one) announces its counters under its own id
 * with an expiry that its heartbeat keeps pushing forward; one that stops announcing drops out when it expires.
 * Stored as the fields of one key of a `HashStore` (per-field expiry, compare-and-set writes), so every node reads
 * every other one's last announcement in one look-up.
 */
import { mutate, type HashStore } from './kv.js';

export interface NodeStats {
  /** Unique per process: the node id, with "/N" for worker N of a node. */
  id: string;
  node: string;
  worker: number;
  pid: number;
  startedAt: number;
  /** When this announcement was made (ms since the epoch). */
  at: number;
  /** Bindings this process holds (registrations whose transport and connection are here). */
  registrations: number;
  liveCalls: number;
  connectedCalls: number;
  /** New call attempts per second over the last heartbeat interval. */
  callsPerSecond: number;
  callsAttempted: number;
  apiRequests: number;
  overloadRefused: number;
}

const KEY = 'all';

export class NodeDirectory {
  constructor(private readonly store: HashStore) {}

  /** Writes (or refreshes) one process's counters, live for ttlMs. */
  async announce(s: NodeStats, ttlMs: number): Promise<void> {
    const entry = { value: JSON.stringify(s), expiresAt: s.at + ttlMs };
    await mutate(this.store, KEY, (fields) => ({ fields: new Map(fields).set(s.id, entry), result: undefined }));
  }

  /** Takes a process out at once (a clean stop). */
  async remove(id: string): Promise<void> {
    await mutate(this.store, KEY, (fields) => {
      if (!fields.has(id)) return { fields: null, result: undefined };
      const next = new Map(fields);
      next.delete(id);
      return { fields: next, result: undefined };
    });
  }

  /** Every process whose announcement has not expired, by id. */
  async list(): Promise<NodeStats[]> {
    const snap = await this.store.read(KEY);
    const out: NodeStats[] = [];
    for (const e of snap.fields.values()) {
      try {
        out.push(JSON.parse(e.value) as NodeStats);
      } catch {
        // a field written by something else: not a node
      }
    }
    return out.sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  }
}
