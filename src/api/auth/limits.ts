/** Usage limits: requests per second per IP, per user and in all (rate-limiter-flexible, in memory). */
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

export interface LimitConfig {
  perIp: number;
  perUser: number;
  global: number;
}

const make = (points: number) => (points > 0 ? new RateLimiterMemory({ points, duration: 1 }) : undefined);

export class UsageLimits {
  private ip?: RateLimiterMemory;
  private user?: RateLimiterMemory;
  private global?: RateLimiterMemory;

  constructor(cfg: LimitConfig) {
    this.configure(cfg);
  }

  private cfg?: LimitConfig;

  /** Applies new limits; a limit whose value did not change keeps its counters. */
  configure(cfg: LimitConfig): void {
    if (this.cfg?.perIp !== cfg.perIp) this.ip = make(cfg.perIp);
    if (this.cfg?.perUser !== cfg.perUser) this.user = make(cfg.perUser);
    if (this.cfg?.global !== cfg.global) this.global = make(cfg.global);
    this.cfg = { ...cfg };
  }

  private static async take(l: RateLimiterMemory | undefined, key: string): Promise<boolean> {
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
