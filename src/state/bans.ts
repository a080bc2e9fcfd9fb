/**
 * Banned addresses and the authentication failures that lead to a ban. The ban list is read on every datagram, so
 * each process keeps it in memory (`isBanned` is synchronous); the shared store keeps those copies equal through the
 * bus (a ban made on one node is seen by the others within milliseconds) and counts failures in Redis so that
 * failures spread over several nodes add up. Durable storage of bans (tb_bans) is the caller's.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Bus } from './bus.js';

export interface BanEntry {
  ip: string;
  reason: string;
  until: number;
  created_at: number;
}

export interface BanStore {
  /** The live ban of an address (this process's copy; synchronous). */
  get(ip: string): BanEntry | undefined;
  isBanned(ip: string): boolean;
  /** Live bans, oldest first. */
  list(): BanEntry[];
  /** Counts a failure; returns the failures of this address within the last windowMs, this one included. */
  recordFailure(ip: string, windowMs: number): Promise<number>;
  clearFailures(ip: string): Promise<void>;
  /** Bans (or re-bans) an address on every node. */
  ban(entry: BanEntry): Promise<void>;
  /** Lifts the ban of an address, or every ban and failure count when ip is "all", on every node. */
  unban(ip: string): Promise<void>;
  /** Replaces this process's copy (bans loaded from the database). */
  replace(entries: BanEntry[]): void;
  /** Called when this copy may have missed changes (the link to the other nodes was lost): reload, then replace. */
  onResync(fn: () => void): void;
}

/** This process's copy of the ban list. */
class BanCache {
  private bans = new Map<string, BanEntry>();

  constructor(private readonly now: () => number) {}

  get(ip: string): BanEntry | undefined {
    const b = this.bans.get(ip);
    if (!b) return undefined;
    if (b.until > this.now()) return b;
    this.bans.delete(ip);
    return undefined;
  }

  set(b: BanEntry): void {
    this.bans.set(b.ip, b);
  }

  delete(ip: string): void {
    if (ip === 'all') this.bans.clear();
    else this.bans.delete(ip);
  }

  replace(entries: BanEntry[]): void {
    this.bans = new Map(entries.map((b) => [b.ip, b]));
  }

  list(): BanEntry[] {
    const t = this.now();
    return [...this.bans.values()].filter((b) => b.until > t).sort((a, b) => a.created_at - b.created_at);
  }
}

/** Failure times per address in a sliding window (bounded: cleared past `maxAddresses`). */
class LocalFailures {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly now: () => number,
    private readonly maxAddresses = 50_000,
  ) {}

  record(ip: string, windowMs: number): number {
    const t = this.now();
    const list = (this.failures.get(ip) ?? []).filter((x) => t - x < windowMs);
    list.push(t);
    this.failures.set(ip, list);
    if (this.failures.size > this.maxAddresses) this.failures.clear();
    return list.length;
  }

  clear(ip: string): void {
    if (ip === 'all') this.failures.clear();
    else this.failures.delete(ip);
  }
}

export class MemoryBans implements BanStore {
  private readonly cache: BanCache;
  private readonly failures: LocalFailures;

  constructor(now: () => number = Date.now) {
    this.cache = new BanCache(now);
    this.failures = new LocalFailures(now);
  }

  get(ip: string): BanEntry | undefined {
    return this.cache.get(ip);
  }
  isBanned(ip: string): boolean {
    return this.cache.get(ip) !== undefined;
  }
  list(): BanEntry[] {
    return this.cache.list();
  }
  async recordFailure(ip: string, windowMs: number): Promise<number> {
    return this.failures.record(ip, windowMs);
  }
  async clearFailures(ip: string): Promise<void> {
    this.failures.clear(ip);
  }
  async ban(entry: BanEntry): Promise<void> {
    this.cache.set(entry);
  }
  async unban(ip: string): Promise<void> {
    this.cache.delete(ip);
    this.failures.clear(ip);
  }
  replace(entries: BanEntry[]): void {
    this.cache.replace(entries);
  }
  onResync(): void {
    // one process: nothing is missed
  }
}

/** Trims the window, adds this failure and returns the count, atomically (all nodes count into one set). */
const FAILURE_LUA = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('ZCARD', KEYS[1])
`;

type WithFailure = Redis & {
  vxBanFailure(key: string, now: string, windowMs: string, member: string): Promise<number>;
};

type BanMessage = { op: 'ban'; ban: BanEntry } | { op: 'unban'; ip: string } | { op: 'reload' };

const CHANNEL = 'bans';

/**
 * Shared: failure counts in Redis (one sorted set of failure times per address), bans copied to every process over
 * the bus. While Redis is unreachable failures are counted in this process (an attack on one node still gets the
 * address banned there) and bans are made locally; when the link is back every node is told to reload.
 */
export class SharedBans implements BanStore {
  private readonly cache: BanCache;
  private readonly fallback: LocalFailures;
  private readonly redis: WithFailure;
  private readonly resync: Array<() => void> = [];
  private readonly tag = randomBytes(4).toString('hex');
  private seq = 0;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly bus: Bus,
    private readonly now: () => number = Date.now,
  ) {
    this.cache = new BanCache(now);
    this.fallback = new LocalFailures(now);
    redis.defineCommand('vxBanFailure', { numberOfKeys: 1, lua: FAILURE_LUA });
    this.redis = redis as WithFailure;
    bus.subscribe(CHANNEL, (data, from) => {
      if (!from.self) this.received(data as BanMessage);
    });
    bus.onRejoin(() => {
      this.reload();
      void this.send({ op: 'reload' });
    });
  }

  get(ip: string): BanEntry | undefined {
    return this.cache.get(ip);
  }
  isBanned(ip: string): boolean {
    return this.cache.get(ip) !== undefined;
  }
  list(): BanEntry[] {
    return this.cache.list();
  }

  async recordFailure(ip: string, windowMs: number): Promise<number> {
    const t = this.now();
    const member = `${t}:${this.tag}:${++this.seq}`;
    try {
      return await this.redis.vxBanFailure(this.failureKey(ip), String(t), String(Math.ceil(windowMs)), member);
    } catch {
      return this.fallback.record(ip, windowMs);
    }
  }

  async clearFailures(ip: string): Promise<void> {
    this.fallback.clear(ip);
    if (ip !== 'all') {
      await this.redis.del(this.failureKey(ip));
      return;
    }
    const stream = this.redis.scanStream({ match: `${this.prefix}fail:*`, count: 500 });
    for await (const keys of stream as AsyncIterable<string[]>) if (keys.length) await this.redis.unlink(...keys);
  }

  async ban(entry: BanEntry): Promise<void> {
    this.cache.set(entry);
    await this.send({ op: 'ban', ban: entry });
  }

  async unban(ip: string): Promise<void> {
    this.cache.delete(ip);
    await this.send({ op: 'unban', ip });
    await this.clearFailures(ip).catch(() => this.fallback.clear(ip));
  }

  replace(entries: BanEntry[]): void {
    this.cache.replace(entries);
  }

  onResync(fn: () => void): void {
    this.resync.push(fn);
  }

  private failureKey(ip: string): string {
    return `${this.prefix}fail:${ip}`;
  }

  private async send(m: BanMessage): Promise<void> {
    // a lost message is made good by the reload every node does when the link is back
    await this.bus.publish(CHANNEL, m).catch(() => undefined);
  }

  private received(m: BanMessage): void {
    if (m.op === 'ban') {
      const b = m.ban;
      if (typeof b?.ip === 'string' && typeof b.until === 'number' && typeof b.created_at === 'number')
        this.cache.set({ ip: b.ip, reason: String(b.reason), until: b.until, created_at: b.created_at });
    } else if (m.op === 'unban' && typeof m.ip === 'string') {
      this.cache.delete(m.ip);
      this.fallback.clear(m.ip);
    } else if (m.op === 'reload') this.reload();
  }

  private reload(): void {
    for (const f of this.resync) f();
  }
}
