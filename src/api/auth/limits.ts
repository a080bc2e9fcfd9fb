/**
 * Usage limits: requests per second per IP, per user and in all (rate-limiter-flexible). The limiters come from the
 * state's factory: in memory in one process, or counters in Redis shared by every node (with an in-process insurance
 * limiter while Redis is away), so a limit holds for the whole switch.
 */
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { MemoryLimiters, type LimiterFactory } from '../../state/limits.js';

export interface LimitConfig {
  perIp: number;
  perUser: number;
  global: number;
}

export class UsageLimits {
  private ip?: RateLimiterAbstract;
  private user?: RateLimiterAbstract;
  private global?: RateLimiterAbstract;
  private cfg?: LimitConfig;

  constructor(
    cfg: LimitConfig,
    private readonly factory: LimiterFactory = new MemoryLimiters(),
  ) {
    this.configure(cfg);
  }

  private make(name: string, points: number): RateLimiterAbstract | undefined {
    return points > 0 ? this.factory.create({ name, points, durationSec: 1 }) : undefined;
  }

  /** Applies new limits; a limit whose value did not change keeps its counters. */
  configure(cfg: LimitConfig): void {
    if (this.cfg?.perIp !== cfg.perIp) this.ip = this.make('api-ip', cfg.perIp);
    if (this.cfg?.perUser !== cfg.perUser) this.user = this.make('api-user', cfg.perUser);
    if (this.cfg?.global !== cfg.global) this.global = this.make('api-all', cfg.global);
    this.cfg = { ...cfg };
  }

  private static async take(l: RateLimiterAbstract | undefined, key: string): Promise<boolean> {
    if (!l) return true;
    try {
      await l.consume(key, 1);
      return true;
    } catch (e) {
      if (e instanceof RateLimiterRes) return false;
      throw e;
    }
  }

  /** Null when allowed, else the limit that was hit. */
  async checkSource(ip: string): Promise<string | null> {
    if (!(await UsageLimits.take(this.global, 'all'))) return 'global API usage limit reached, try again in a second';
    if (!(await UsageLimits.take(this.ip, ip))) return `API usage limit for ${ip} reached, try again in a second`;
    return null;
  }

  async checkUser(userId: number): Promise<string | null> {
    return (await UsageLimits.take(this.user, String(userId)))
      ? null
      : 'API usage limit for this user reached, try again in a second';
  }
}
