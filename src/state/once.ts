/**
 * Single-use tokens with a lifetime: `claim` is true the first time a key is claimed within its TTL, false for every
 * later claim until the TTL has passed. Used salts of the API (authsalt) and digest nonces used without qop.
 */
import type { Redis } from 'ioredis';

export interface OnceStore {
  /** True when the key was not claimed within the last ttlMs (and claims it now). */
  claim(key: string, ttlMs: number): Promise<boolean>;
}

/** In-process: a map of key → expiry, swept every few seconds (or when it grows past `maxKeys`). */
export class MemoryOnce implements OnceStore {
  private readonly keys = new Map<string, number>();
  private lastSweep = 0;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 500_000,
  ) {}

  async claim(key: string, ttlMs: number): Promise<boolean> {
    return this.claimSync(key, ttlMs);
  }

  /** The same, synchronously (in-process callers that cannot await). */
  claimSync(key: string, ttlMs: number): boolean {
    const t = this.now();
    if (t - this.lastSweep > 10_000 || this.keys.size > this.maxKeys) this.sweep(t);
    const exp = this.keys.get(key);
    if (exp !== undefined && exp > t) return false;
    this.keys.set(key, t + ttlMs);
    return true;
  }

  size(): number {
    return this.keys.size;
  }

  private sweep(t: number): void {
    this.lastSweep = t;
    for (const [k, exp] of this.keys) if (exp <= t) this.keys.delete(k);
  }
}

/** Shared: `SET key 1 PX ttl NX`, atomic across nodes; Redis expires the key. */
export class RedisOnce implements OnceStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async claim(key: string, ttlMs: number): Promise<boolean> {
    const r = await this.redis.set(`${this.prefix}once:${key}`, '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX');
    return r === 'OK';
  }
}
