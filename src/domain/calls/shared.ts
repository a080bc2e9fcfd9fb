/**
 * The live calls of every process and node of the switch: the list from the shared record (tb_livecalls, each row
 * with its owning node) and the disconnection of a call another process holds, asked of its owner over the bus.
 *
 *   const shared = new SharedLiveCalls(() => live, db, bus); // services.sharedCalls; start() subscribes
 *   await shared.list()                  // this process's calls (from memory) + every other node's rows
 *   await shared.disconnect(id, reason)  // local: hangup(); elsewhere: a request on the bus
 *
 * A request (`livecalls:hangup`, { r: request id, id, why: the CDR's reason }) is answered (`livecalls:hungup`,
 * { r, legs, node }) only by the process that holds the call, after it started the hang-up (BYE to both legs; its
 * finish() writes the CDR). The requester waits `timeoutMs` (default 3 s) for that answer. With a single unnamed
 * node (`node` ''), the list is this process's calls only, as it always was.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import type { Bus } from '../../state/bus.js';
import type { LiveCalls } from './livecalls.js';
import type { LiveState } from './types.js';

const ASK = 'livecalls:hangup';
const ANSWER = 'livecalls:hungup';

/** One live call leg as listed by quickstat: the row key, its owner and what tb_livecalls records of it. */
export interface ListedCall {
  key: string;
  node: string;
  userId: number;
  caller: string;
  callee: string;
  route: string;
  state: LiveState;
  connectAt: number | null;
  maxduration: number;
}

export type Disconnected =
  | { ok: true; node: string; legs: number }
  | { ok: false; reason: 'unknown' }
  | { ok: false; reason: 'timeout'; node: string };

interface Pending {
  resolve: (legs: number, node: string) => void;
}

export class SharedLiveCalls {
  private readonly pending = new Map<string, Pending>();
  private unsubscribe: Array<() => void> = [];

  constructor(
    private readonly liveOf: () => LiveCalls,
    private readonly db: Kysely<Database>,
    private readonly bus: Bus,
    private readonly timeoutMs = 3000,
  ) {}

  private get live(): LiveCalls {
    return this.liveOf();
  }

  /** Answers the hang-up requests of the other processes for the calls this one holds. */
  async start(): Promise<void> {
    if (this.unsubscribe.length) return;
    this.unsubscribe.push(
      this.bus.subscribe(ASK, (data, from) => {
        const m = data as { r?: unknown; id?: unknown; why?: unknown };
        if (from.self || typeof m.r !== 'string' || typeof m.id !== 'string') return;
        const legs = this.live.find(m.id).length;
        if (!legs) return;
        this.live.hangup(m.id, typeof m.why === 'string' ? m.why.slice(0, 200) : 'disconnected by API');
        void this.bus.publish(ANSWER, { r: m.r, legs, node: this.live.node }).catch(() => undefined);
      }),
      this.bus.subscribe(ANSWER, (data) => {
        const m = data as { r?: unknown; legs?: unknown; node?: unknown };
        if (typeof m.r !== 'string') return;
        this.pending.get(m.r)?.resolve(Number(m.legs) || 1, String(m.node ?? ''));
      }),
    );
    await this.bus.ready();
  }

  stop(): void {
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
  }

  /** True when calls may live in other processes (a named node: several share the database). */
  get shared(): boolean {
    return this.live.node !== '';
  }

  /** This process's live calls and, for a named node, every other node's rows of tb_livecalls. */
  async list(): Promise<ListedCall[]> {
    const own: ListedCall[] = this.live.list().map((c) => ({
      key: c.key,
      node: this.live.node,
      userId: c.userId,
      caller: c.caller,
      callee: c.callee,
      route: c.route,
      state: c.state,
      connectAt: c.connectAt,
      maxduration: c.maxduration,
    }));
    if (!this.shared) return own;
    const rows = await this.db
      .selectFrom('tb_livecalls')
      .select(['callid', 'node', 'userid', 'caller', 'callee', 'route', 'state', 'connect_at', 'maxduration'])
      .where('node', '<>', this.live.node)
      .orderBy('start_at')
      .execute();
    return own.concat(
      rows.map((r) => ({
        key: r.callid,
        node: r.node,
        userId: Number(r.userid),
        caller: r.caller,
        callee: r.callee,
        route: r.route,
        state: r.state as LiveState,
        connectAt: r.connect_at === null ? null : Number(r.connect_at),
        maxduration: Number(r.maxduration),
      })),
    );
  }

  /** The node holding a call of another process (by row key, or callid of its legs); undefined if none. */
  async ownerOf(id: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('tb_livecalls')
      .select('node')
      // the key itself, or a leg key `id/leg` ('0' is the character after '/')
      .where((eb) => eb.or([eb('callid', '=', id), eb.and([eb('callid', '>', `${id}/`), eb('callid', '<', `${id}0`)])]))
      .where('node', '<>', this.live.node)
      .executeTakeFirst();
    return row?.node;
  }

  /** Ends a live call of this process, or asks its owner to (answer within timeoutMs). */
  async disconnect(id: string, reason: string): Promise<Disconnected> {
    const mine = this.live.find(id);
    if (mine.length) {
      this.live.hangup(id, reason);
      return { ok: true, node: this.live.node, legs: mine.length };
    }
    if (!this.shared) return { ok: false, reason: 'unknown' };
    const node = await this.ownerOf(id);
    if (node === undefined) return { ok: false, reason: 'unknown' };
    const r = randomBytes(8).toString('hex');
    return new Promise<Disconnected>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(r);
        resolve({ ok: false, reason: 'timeout', node });
      }, this.timeoutMs);
      this.pending.set(r, {
        resolve: (legs, from) => {
          clearTimeout(timer);
          this.pending.delete(r);
          resolve({ ok: true, node: from || node, legs });
        },
      });
      this.bus.publish(ASK, { r, id, why: reason }).catch(() => undefined);
    });
  }
}
