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

  configure(cfg: LimitConfig): void {
    this.ip = make(cfg.perIp);
    this.user = make(cfg.perUser);
    this.global = make(cfg.global);
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
    return (await UsageLimits.take(this.user, String(userId))) ? null : 'API usage limit for this user reached, try again in a second';
  }
}
