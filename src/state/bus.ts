/**
 * Publish/subscribe between the processes and nodes of one switch. A message carries its sender (node id and a
 * per-process instance id) so a receiver can ignore its own. In-process: handlers called on a later microtask (as
 * over the network, never inside `publish`); shared: Redis PUBLISH and a second connection that only subscribes.
 * Delivery is at most once: while a node is cut off from Redis it misses messages, and `onRejoin` tells it to
 * resynchronise.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

export interface Sender {
  node: string;
  /** True for a message this process published. */
  self: boolean;
}

export type BusHandler = (data: unknown, from: Sender) => void;

export interface SubscribeOptions {
  othersOnly?: boolean;
}

export interface Bus {
  readonly nodeId: string;
  publish(channel: string, data: unknown): Promise<void>;
  /**
   * Returns the function that unsubscribes. With `othersOnly` the handler is never called for this process's own
   * messages (over Redis, a channel whose handlers all say so does not even decode them).
   */
  subscribe(channel: string, handler: BusHandler, opts?: SubscribeOptions): () => void;
  /** Resolves once the subscriptions made so far are active (a message published after that is received). */
  ready(): Promise<void>;
  /** Called after messages may have been missed (the subscriber connection was lost and is back). */
  onRejoin(fn: () => void): void;
  close(): Promise<void>;
}

interface Envelope {
  n: string;
  i: string;
  d: unknown;
}

/** Dispatches envelopes to the handlers of a channel. */
class Handlers {
  private readonly byChannel = new Map<string, Set<BusHandler>>();
  /** Per channel, how many of its handlers also want this process's own messages. */
  private readonly wantSelf = new Map<string, number>();

  constructor(private readonly instance: string) {}

  add(channel: string, h: BusHandler, othersOnly = false): { first: boolean; remove: () => boolean } {
    let set = this.byChannel.get(channel);
    const first = !set;
    if (!set) this.byChannel.set(channel, (set = new Set()));
    const handler: BusHandler = othersOnly ? (d, from) => from.self || h(d, from) : h;
    set.add(handler);
    if (!othersOnly) this.wantSelf.set(channel, (this.wantSelf.get(channel) ?? 0) + 1);
    let removed = false;
    return {
      first,
      remove: () => {
        if (removed) return false;
        removed = true;
        set.delete(handler);
        if (!othersOnly) this.wantSelf.set(channel, this.wantSelf.get(channel)! - 1);
        if (set.size) return false;
        this.byChannel.delete(channel);
        this.wantSelf.delete(channel);
        return true;
      },
    };
  }

  /** True when no handler of the channel wants this process's own messages. */
  othersOnly(channel: string): boolean {
    return !this.wantSelf.get(channel);
  }

  channels(): string[] {
    return [...this.byChannel.keys()];
  }

  deliver(channel: string, env: Envelope): void {
    const from: Sender = { node: env.n, self: env.i === this.instance };
    for (const h of this.byChannel.get(channel) ?? []) {
      try {
        h(env.d, from);
      } catch {
        // a failing handler must not stop the others
      }
    }
  }
}

const instanceId = () => randomBytes(6).toString('hex');

export class MemoryBus implements Bus {
  private readonly instance = instanceId();
  private readonly handlers = new Handlers(this.instance);

  constructor(readonly nodeId: string) {}

  async publish(channel: string, data: unknown): Promise<void> {
    const env: Envelope = { n: this.nodeId, i: this.instance, d: data };
    queueMicrotask(() => this.handlers.deliver(channel, env));
  }

  subscribe(channel: string, handler: BusHandler, opts?: SubscribeOptions): () => void {
    return this.handlers.add(channel, handler, opts?.othersOnly).remove;
  }

  async ready(): Promise<void> {}

  onRejoin(): void {
    // nothing is ever missed in one process
  }

  async close(): Promise<void> {}
}

export class RedisBus implements Bus {
  private readonly instance = instanceId();
  private readonly handlers = new Handlers(this.instance);
  private readonly rejoin: Array<() => void> = [];
  private wasLost = false;

  private constructor(
    readonly nodeId: string,
    private readonly pub: Redis,
    private readonly sub: Redis,
    private readonly prefix: string,
  ) {
    // the start of this process's own envelopes as publish() writes them: skipped undecoded where nobody wants them
    const own = JSON.stringify({ n: nodeId, i: this.instance }).slice(0, -1) + ',';
    sub.on('message', (ch: string, text: string) => {
      if (!ch.startsWith(prefix)) return;
      const channel = ch.slice(prefix.length);
      if (text.startsWith(own) && this.handlers.othersOnly(channel)) return;
      let env: Envelope;
      try {
        env = JSON.parse(text) as Envelope;
      } catch {
        return;
      }
      this.handlers.deliver(channel, env);
    });
    sub.on('error', () => undefined); // the main connection logs the state of the link
    sub.on('close', () => (this.wasLost = true));
    sub.on('ready', () => {
      if (!this.wasLost) return;
      this.wasLost = false;
      // ioredis subscribes again to what it knew; a subscribe that failed while the link was down is made now
      void this.ready()
        .catch(() => undefined)
        .then(() => {
          for (const f of this.rejoin) f();
        });
    });
  }

  /** Opens the subscriber connection (a duplicate of `pub`). */
  static async open(nodeId: string, pub: Redis, prefix: string): Promise<RedisBus> {
    const sub = pub.duplicate({ enableAutoPipelining: false });
    sub.on('error', () => undefined);
    await sub.connect();
    return new RedisBus(nodeId, pub, sub, `${prefix}bus:`);
  }

  async publish(channel: string, data: unknown): Promise<void> {
    const env: Envelope = { n: this.nodeId, i: this.instance, d: data };
    await this.pub.publish(this.prefix + channel, JSON.stringify(env));
  }

  subscribe(channel: string, handler: BusHandler, opts?: SubscribeOptions): () => void {
    const { first, remove } = this.handlers.add(channel, handler, opts?.othersOnly);
    if (first) void this.sub.subscribe(this.prefix + channel).catch(() => undefined);
    return () => {
      if (remove()) void this.sub.unsubscribe(this.prefix + channel).catch(() => undefined);
    };
  }

  /** Resolves once the subscriptions made so far are active in Redis (a message published after it arrives). */
  async ready(): Promise<void> {
    const chans = this.handlers.channels().map((c) => this.prefix + c);
    if (chans.length) await this.sub.subscribe(...chans);
  }

  onRejoin(fn: () => void): void {
    this.rejoin.push(fn);
  }

  async close(): Promise<void> {
    await this.sub.quit().catch(() => this.sub.disconnect());
  }
}
