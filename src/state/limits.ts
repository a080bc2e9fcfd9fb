/**
 * Rate limiters (rate-limiter-flexible) for usage limits: in-process counters, or counters in Redis that all nodes
 * share (a limit of 100/s is 100/s for the whole switch, not per node).
 *
 * Redis unreachable: each shared limiter falls back to its insurance limiter, an in-process limiter with the same
 * points, at once (the connection's state is checked before each call, no waiting for a time-out). The limit then
 * holds per node until Redis is back: requests are neither all refused nor let through unlimited.
 */
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';

export interface LimiterSpec {
  /** Distinguishes the counters of different limits (e.g. "api-ip", "api-user"). */
  name: string;
  /** Points allowed per duration. */
  points: number;
  /** Seconds (whole, at least 1). */
  durationSec: number;
}

export interface LimiterFactory {
  create(spec: LimiterSpec): RateLimiterAbstract;
}

export class MemoryLimiters implements LimiterFactory {
  create(s: LimiterSpec): RateLimiterAbstract {
    return new RateLimiterMemory({ keyPrefix: s.name, points: s.points, duration: s.durationSec });
  }
}

export class RedisLimiters implements LimiterFactory {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  create(s: LimiterSpec): RateLimiterAbstract {
    return new RateLimiterRedis({
      storeClient: this.redis,
      keyPrefix: `${this.prefix}rl:${s.name}`,
      points: s.points,
      duration: s.durationSec,
      rejectIfRedisNotReady: true,
      insuranceLimiter: new RateLimiterMemory({ keyPrefix: s.name, points: s.points, duration: s.durationSec }),
    });
  }
}
