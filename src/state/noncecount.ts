/**
 * Digest nonce counts (RFC 7616 §3.4 replay protection): every nc accepted for a nonce is remembered until the nonce
 * expires. A count may arrive out of order within a window of 64 below the highest one seen, each value once; a
 * count at or below `highest - 64` is refused, as is one seen before.
 */
import type { Redis } from 'ioredis';

export const NC_WINDOW = 64;

/** ok: accepted now; replay: seen before or too old; full: the in-process table is at its bound (try later). */
export type NcVerdict = 'ok' | 'replay' | 'full';

export interface NonceCounts {
  /** Accepts nc for the nonce; ttlMs is how long the nonce stays valid from now (its state is kept that long). */
  accept(nonce: string, nc: number, ttlMs: number): Promise<NcVerdict>;
  /** Nonces whose counts are held here (undefined when the store cannot tell cheaply). */
  tracked(): number | undefined;
}

/**
 * One nonce's counts: the highest seen and which of the NC_WINDOW values up to it were seen, as a bit set in two
 * 32-bit halves (bit k: `max - k` was seen), so a nonce costs a small object, not a Set.
 */
interface NonceState {
  exp: number;
  max: number;
  lo: number;
  hi: number;
}

/**
 * In-process, the table the SIP digest code keeps: bounded by `maxTracked`, expired nonces swept at most once a
 * second by the next count, and by a timer while the table holds nonces (an idle switch keeps none past their
 * lifetime).
 */
export class MemoryNonceCounts implements NonceCounts {
  private readonly nonces = new Map<string, NonceState>();
  private lastSweep = 0;
  private sweeper?: NodeJS.Timeout;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxTracked = 200_000,
  ) {}

  async accept(nonce: string, nc: number, ttlMs: number): Promise<NcVerdict> {
    return this.acceptSync(nonce, nc, ttlMs);
  }

  acceptSync(nonce: string, nc: number, ttlMs: number): NcVerdict {
    this.sweep();
    let st = this.nonces.get(nonce);
    if (st && st.exp < this.now()) st = undefined; // expired, not swept yet: starts anew, as in Redis
    if (!st) {
      if (this.nonces.size >= this.maxTracked) return 'full';
      st = { exp: this.now() + ttlMs, max: 0, lo: 0, hi: 0 };
      this.nonces.set(nonce, st);
      this.armSweeper();
    }
    if (nc > st.max) {
      shift(st, nc - st.max);
      st.max = nc;
      st.lo = (st.lo | 1) >>> 0;
      return 'ok';
    }
    const k = st.max - nc;
    if (k >= NC_WINDOW) return 'replay';
    const bit = k < 32 ? (st.lo >>> k) & 1 : (st.hi >>> (k - 32)) & 1;
    if (bit) return 'replay';
    if (k < 32) st.lo = (st.lo | (1 << k)) >>> 0;
    else st.hi = (st.hi | (1 << (k - 32))) >>> 0;
    return 'ok';
  }

  tracked(): number {
    return this.nonces.size;
  }

  /** Every 10 s while nonces are held (unref'd: never keeps the process alive). */
  private armSweeper(): void {
    if (this.sweeper !== undefined) return;
    this.sweeper = setTimeout(() => {
      this.sweeper = undefined;
      this.sweep();
      if (this.nonces.size) this.armSweeper();
    }, 10_000);
    this.sweeper.unref();
  }

  private sweep(): void {
    const t = this.now();
    if (t - this.lastSweep < 1000) return;
    this.lastSweep = t;
    for (const [k, v] of this.nonces) if (v.exp < t) this.nonces.delete(k);
  }
}

/** Moves a nonce's window up by d (the new highest count is d above the old one). */
function shift(st: NonceState, d: number): void {
  if (d >= NC_WINDOW) {
    st.lo = 0;
    st.hi = 0;
  } else if (d >= 32) {
    st.hi = (st.lo << (d - 32)) >>> 0;
    st.lo = 0;
  } else {
    st.hi = ((st.hi << d) | (st.lo >>> (32 - d))) >>> 0;
    st.lo = (st.lo << d) >>> 0;
  }
}

/**
 * One sorted set per nonce (member and score: the count), checked and updated by one Lua script so that two nodes
 * can never both accept the same count. Counts that fell out of the window are trimmed; the key expires with the
 * nonce.
 */
const ACCEPT_LUA = `
local nc = tonumber(ARGV[1])
local win = tonumber(ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local max = 0
if top[2] then max = tonumber(top[2]) end
if nc <= max - win then return 0 end
redis.call('ZADD', KEYS[1], nc, ARGV[1])
if nc > max then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nc - win) end
if not top[2] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`;

type WithAccept = Redis & {
  vxNcAccept(key: string, nc: string, ttlMs: string, window: string): Promise<number>;
};

export class RedisNonceCounts implements NonceCounts {
  private readonly redis: WithAccept;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    redis.defineCommand('vxNcAccept', { numberOfKeys: 1, lua: ACCEPT_LUA });
    this.redis = redis as WithAccept;
  }

  async accept(nonce: string, nc: number, ttlMs: number): Promise<NcVerdict> {
    if (!Number.isSafeInteger(nc) || nc < 1) return 'replay';
    const ttl = String(Math.max(1, Math.ceil(ttlMs)));
    const r = await this.redis.vxNcAccept(`${this.prefix}nc:${nonce}`, String(nc), ttl, String(NC_WINDOW));
    return r === 1 ? 'ok' : 'replay';
  }

  tracked(): undefined {
    return undefined;
  }
}
