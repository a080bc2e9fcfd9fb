/**
 * The hot, expiring state of the switch behind one set of interfaces: in this process (the default, nothing else
 * to run) or in Redis, shared by every process and node (option redisurl). See README.md beside this file.
 */
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { MemoryOnce, RedisOnce, type OnceStore } from './once.js';
import { MemoryNonceCounts, RedisNonceCounts, type NonceCounts } from './noncecount.js';
import { MemoryBans, SharedBans, type BanStore } from './bans.js';
import { MemoryLimiters, RedisLimiters, type LimiterFactory } from './limits.js';
import { MemoryBus, RedisBus, type Bus } from './bus.js';
import { MemoryHash, MemoryTtl, RedisHash, RedisTtl, type HashStore, type TtlStore } from './kv.js';
import { RedisLink, type StateLog } from './redis.js';
import { NodeDirectory } from './nodes.js';

export type { OnceStore } from './once.js';
export type { NonceCounts, NcVerdict } from './noncecount.js';
export type { BanStore, BanEntry } from './bans.js';
export type { LimiterFactory, LimiterSpec } from './limits.js';
export type { Bus, BusHandler, Sender, SubscribeOptions } from './bus.js';
export type { TtlStore, HashStore, HashEntry, HashSnapshot } from './kv.js';
export { mutate } from './kv.js';
export { NodeDirectory, type NodeStats } from './nodes.js';
export { redactUrl, type StateLog } from './redis.js';

export interface StateOptions {
  /** Empty: in-process; else redis://[user:password@]host:port[/db]. */
  redisUrl?: string;
  /** This node's name (default: the host name). */
  nodeId?: string;
  log?: StateLog;
  /** Prefix of every Redis key and channel (default "vx:"); tests use one of their own. */
  prefix?: string;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
}

export interface State {
  readonly kind: 'memory' | 'redis';
  readonly nodeId: string;
  /** "in-process" or the Redis URL without its password. */
  readonly describe: string;
  readonly once: OnceStore;
  readonly nonces: NonceCounts;
  readonly bans: BanStore;
  readonly limits: LimiterFactory;
  readonly bus: Bus;
  /** Values with a lifetime in a namespace (e.g. "presence"). */
  ttl(namespace: string): TtlStore;
  /** Hashes with per-field expiry in a namespace (e.g. "location"). */
  hash(namespace: string): HashStore;
  /** The live nodes (and workers) of the switch with their counters (info, quickstat). */
  readonly nodes: NodeDirectory;
  /** Null while the state answers; else why not (new calls are refused with this reason). */
  unavailable(): string | null;
  /** The Redis client (shared only), for a store not listed here. */
  readonly redis?: Redis;
  close(): Promise<void>;
}

/** Opens the state: in-process when redisUrl is empty; else connects to Redis or throws an Error naming the URL. */
export async function openState(o: StateOptions = {}): Promise<State> {
  const nodeId = o.nodeId || hostname();
  if (!o.redisUrl) return memoryState(nodeId);
  const prefix = o.prefix ?? 'vx:';
  const link = await RedisLink.connect({
    url: o.redisUrl,
    log: o.log,
    connectTimeoutMs: o.connectTimeoutMs,
    commandTimeoutMs: o.commandTimeoutMs,
  });
  let bus: RedisBus;
  try {
    bus = await RedisBus.open(nodeId, link.client, prefix);
  } catch (e) {
    await link.close();
    throw new Error(`Redis at ${link.url}: the subscriber connection failed (${(e as Error).message})`);
  }
  const r = link.client;
  const bans = new SharedBans(r, prefix, bus);
  await bus.ready();
  const ttls = new Map<string, TtlStore>();
  const hashes = new Map<string, HashStore>();
  return {
    kind: 'redis',
    nodeId,
    describe: link.url,
    once: new RedisOnce(r, prefix),
    nonces: new RedisNonceCounts(r, prefix),
    bans,
    limits: new RedisLimiters(r, prefix),
    bus,
    ttl: (ns) => cached(ttls, ns, () => new RedisTtl(r, `${prefix}kv:${ns}:`)),
    hash: (ns) => cached(hashes, ns, () => new RedisHash(r, `${prefix}kv:${ns}:`)),
    nodes: new NodeDirectory(cached(hashes, 'nodes', () => new RedisHash(r, `${prefix}kv:nodes:`))),
    unavailable: () => link.unavailable(),
    redis: r,
    async close() {
      await bus.close();
      await link.close();
    },
  };
}

function memoryState(nodeId: string): State {
  const ttls = new Map<string, TtlStore>();
  const hashes = new Map<string, HashStore>();
  const bus = new MemoryBus(nodeId);
  return {
    kind: 'memory',
    nodeId,
    describe: 'in-process',
    once: new MemoryOnce(),
    nonces: new MemoryNonceCounts(),
    bans: new MemoryBans(),
    limits: new MemoryLimiters(),
    bus,
    ttl: (ns) => cached(ttls, ns, () => new MemoryTtl()),
    hash: (ns) => cached(hashes, ns, () => new MemoryHash()),
    nodes: new NodeDirectory(cached(hashes, 'nodes', () => new MemoryHash())),
    unavailable: () => null,
    close: () => bus.close(),
  };
}

function cached<T>(map: Map<string, T>, key: string, make: () => T): T {
  let v = map.get(key);
  if (v === undefined) map.set(key, (v = make()));
  return v;
}
