/**
 * The trunk registrar: keeps one TrunkClient per enabled gateway with register=1. Every `tickMs` it reads the
 * gateways (RoutingService.trunks), starts the new ones, re-registers a changed one and unregisters (Expires: 0)
 * one that was deleted, disabled or no longer registers.
 *
 * With several processes (`serve --workers N`, several nodes) only ONE registers a trunk: the one that holds the
 * trunk's lease, a field of `state.hash('trunks')` (key `gw:<id>`, compare-and-set, expiring `leaseMs` after its
 * last renewal, renewed every tick). The lease's value carries the trunk's state, so `states()` on any process
 * shows it. A process that dies stops renewing; another takes the lease over once it expired and registers the
 * same Contact again. A process that loses its lease stops without unregistering (the new holder's binding is the
 * same Contact).
 */
import type { HashStore } from '../../state/index.js';
import { mutate } from '../../state/index.js';
import type { TrunkConfig } from '../../domain/routing/types.js';
import type { SipResolver } from './resolve.js';
import { TrunkClient, type TrunkDeps, type TrunkState } from './register.js';

export type { TrunkState, TrunkStatus } from './register.js';

export interface TrunkRegistrarDeps {
  /** The registering gateways now (RoutingService.trunks). */
  trunks(): Promise<TrunkConfig[]>;
  trust(gatewayId: number, ips: string[]): void;
  stack: TrunkDeps['stack'];
  resolver: SipResolver;
  log: TrunkDeps['log'];
  leases: HashStore;
  /** This process, as the lease names it (node id, with the worker index). */
  owner: string;
}

export interface TrunkRegistrarOptions {
  tickMs?: number;
  leaseMs?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
  answerMs?: number;
}

interface Lease {
  owner: string;
  state?: TrunkState;
}

export class TrunkRegistrar {
  private readonly clients = new Map<number, { client: TrunkClient }>();
  private timer?: NodeJS.Timeout;
  private syncing?: Promise<void>;
  private stopped = false;
  /** Timing; retryMinMs/retryMaxMs may change while running (a reload). */
  readonly o: Required<TrunkRegistrarOptions>;

  constructor(
    private readonly d: TrunkRegistrarDeps,
    o: TrunkRegistrarOptions = {},
  ) {
    this.o = {
      tickMs: o.tickMs ?? 5000,
      leaseMs: o.leaseMs ?? 20_000,
      retryMinMs: o.retryMinMs ?? 30_000,
      retryMaxMs: o.retryMaxMs ?? 600_000,
      answerMs: o.answerMs ?? 8000,
    };
  }

  /** First sync now, then every tickMs. */
  async start(): Promise<void> {
    await this.sync();
    this.timer = setInterval(() => void this.sync(), this.o.tickMs);
    this.timer.unref();
  }

  /** Brings the clients in line with the gateways now (after addgateway/delgateway, and every tick). */
  sync(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    // one sync at a time; a sync asked for meanwhile runs after it (it may see a newer list)
    const next = (this.syncing ?? Promise.resolve()).then(() => this.syncOnce());
    const p = next.catch((e: unknown) => this.d.log.warn({ err: String(e) }, 'trunk registrations not synced'));
    this.syncing = p;
    return p;
  }

  private async syncOnce(): Promise<void> {
    if (this.stopped) return;
    const list = await this.d.trunks();
    const wanted = new Map(list.map((c) => [c.id, c]));
    for (const [id, { client }] of this.clients) {
      const c = wanted.get(id);
      if (!c || JSON.stringify(c) !== JSON.stringify(client.cfg)) {
        // deleted, disabled, no longer registering or changed: the old binding goes
        this.clients.delete(id);
        await client.stop(true);
        this.d.trust(id, []);
        await this.release(id);
      }
    }
    for (const c of list) {
      const mine = await this.claim(c.id, this.clients.get(c.id)?.client.state).catch((e: unknown) => {
        this.d.log.debug({ err: String(e), gateway: c.name }, 'trunk lease not checked (shared state away)');
        return this.clients.has(c.id); // keep what we do until the state answers again
      });
      const held = this.clients.get(c.id);
      if (mine && !held) this.begin(c);
      if (!mine && held) {
        this.d.log.info({ gateway: c.name }, 'trunk lease lost: another process registers it now');
        this.clients.delete(c.id);
        await held.client.stop(false);
      }
    }
  }

  private begin(c: TrunkConfig): void {
    const client: TrunkClient = new TrunkClient(c, {
      stack: this.d.stack,
      resolver: this.d.resolver,
      log: this.d.log,
      retry: () => ({ minMs: this.o.retryMinMs, maxMs: this.o.retryMaxMs }),
      answerMs: this.o.answerMs,
      owner: this.d.owner,
      trust: (ips) => this.d.trust(c.id, ips),
      changed: (s) => {
        if (s.status === 'registered')
          this.d.log.debug({ gateway: c.name, expires: s.expires, registrar: s.registrar }, 'trunk registered');
        // the lease carries the state while this client is the trunk's (not once it was stopped)
        if (this.clients.get(c.id)?.client === client) void this.claim(c.id, s).catch(() => undefined);
      },
    });
    this.clients.set(c.id, { client });
    client.start();
  }

  /** Takes or renews the lease of a trunk (with its state); false when another process holds it. */
  private claim(id: number, state?: TrunkState): Promise<boolean> {
    const me = this.d.owner;
    return mutate(this.d.leases, `gw:${id}`, (fields) => {
      const cur = fields.get('lease');
      const lease = cur ? (JSON.parse(cur.value) as Lease) : undefined;
      if (lease && lease.owner !== me) return { fields: null, result: false };
      const value: Lease = { owner: me, state };
      const next = new Map([['lease', { value: JSON.stringify(value), expiresAt: Date.now() + this.o.leaseMs }]]);
      return { fields: next, result: true };
    });
  }

  private release(id: number): Promise<boolean> {
    const me = this.d.owner;
    return mutate(this.d.leases, `gw:${id}`, (fields) => {
      const cur = fields.get('lease');
      if (!cur || (JSON.parse(cur.value) as Lease).owner !== me) return { fields: null, result: false };
      return { fields: new Map(), result: true };
    }).catch(() => false);
  }

  /** The state of every registering gateway, whichever process registers it (from the leases). */
  async states(): Promise<TrunkState[]> {
    const list = await this.d.trunks();
    const out: TrunkState[] = [];
    for (const c of list) {
      const local = this.clients.get(c.id)?.client.state;
      if (local) {
        out.push({ ...local });
        continue;
      }
      const snap = await this.d.leases.read(`gw:${c.id}`).catch(() => undefined);
      const cur = snap?.fields.get('lease');
      const lease = cur ? (JSON.parse(cur.value) as Lease) : undefined;
      out.push(
        lease?.state ?? {
          id: c.id,
          name: c.name,
          status: 'standby',
          cause: lease ? '' : 'no process holds the lease yet',
          expires: 0,
          registeredAt: 0,
          nextTry: 0,
          registrar: '',
          failures: 0,
          owner: lease?.owner ?? '',
        },
      );
    }
    return out;
  }

  /** REGISTERs again now every trunk this process registers (gwrst); resolves with every trunk's state. */
  async reregisterAll(): Promise<TrunkState[]> {
    await this.sync();
    await Promise.all([...this.clients.values()].map(({ client }) => client.refresh()));
    return this.states();
  }

  /** Clean shutdown: every trunk this process registers is unregistered (Expires: 0) and its lease released. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.syncing;
    const all = [...this.clients.entries()];
    this.clients.clear();
    const bounded = (p: Promise<unknown>) =>
      Promise.race([p, new Promise((r) => setTimeout(r, this.o.answerMs + 500).unref())]);
    await bounded(Promise.all(all.map(([, { client }]) => client.stop(true))));
    await Promise.all(all.map(([id]) => this.release(id)));
  }
}
