/**
 * Where the other nodes' SIP relays listen (option `siprelayport`): each node announces its node id, relay address
 * and Call-ID tag on the bus channel "siprelay" at start (asking the others to answer with theirs), every 30 s and
 * after the bus was lost. The transport's node relay asks this directory where a node is and which node a tag names.
 */
import type { Bus } from '../../state/index.js';
import { nodeTag } from '../transport/relay.js';

const CHANNEL = 'siprelay';

interface Announcement {
  node: string;
  host: string;
  port: number;
  hello?: boolean;
}

export class RelayDirectory {
  private readonly byNode = new Map<string, { host: string; port: number }>();
  private readonly byTag = new Map<string, string>();
  private unsubscribe?: () => void;
  private timer?: NodeJS.Timeout;
  private self?: Announcement;

  constructor(
    private readonly bus: Bus,
    readonly node: string,
    private readonly log: { warn(o: object, m: string): void },
  ) {}

  addressOf(node: string): { host: string; port: number } | undefined {
    return this.byNode.get(node);
  }

  nodeOfTag(tag: string): string | undefined {
    return this.byTag.get(tag);
  }

  /** Subscribes and announces this node's relay at host:port. */
  async start(host: string, port: number): Promise<void> {
    this.self = { node: this.node, host, port };
    this.unsubscribe = this.bus.subscribe(CHANNEL, (data) => {
      const a = data as Announcement;
      if (typeof a?.node !== 'string' || typeof a.host !== 'string' || !Number.isInteger(a.port)) return;
      if (a.node === this.node) return;
      this.byNode.set(a.node, { host: a.host, port: a.port });
      this.byTag.set(nodeTag(a.node), a.node);
      if (a.hello) this.announce(false);
    });
    this.bus.onRejoin(() => this.announce(true));
    await this.bus.ready();
    this.announce(true);
    this.timer = setInterval(() => this.announce(false), 30_000);
    this.timer.unref();
  }

  stop(): void {
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
  }

  private announce(hello: boolean): void {
    if (!this.self) return;
    void this.bus
      .publish(CHANNEL, { ...this.self, hello })
      .catch((e: unknown) => this.log.warn({ err: (e as Error)?.message }, 'SIP relay announcement failed'));
  }
}
