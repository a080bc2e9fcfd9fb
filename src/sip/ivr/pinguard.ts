/**
 * Limits PIN guessing on access numbers across calls: the wrong PINs of one caller number, and of all callers
 * together, are counted over `ivrpinfailwindow` seconds in the shared state's limiters (Redis counters that every
 * node sees, or in-process ones). Past `ivrpinfailmax` for a number, its calls to an access number are refused before
 * the IVR answers; past `ivrpinfailglobal`, PIN entry is refused for everyone until the window has passed (a guesser
 * who changes caller numbers). The caller's source address is not counted: access-number calls arrive through
 * trunks, and counting the trunk would lock out every caller behind it.
 */
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Logger } from 'pino';
import type { LimiterFactory } from '../../state/index.js';
import type { Options } from '../../config/options.js';

type GuardOptions = Pick<Options, 'ivrpinfailmax' | 'ivrpinfailwindow' | 'ivrpinfailglobal'>;

const GLOBAL_KEY = 'all';

export class PinGuard {
  private readonly made = new Map<string, RateLimiterAbstract>();

  constructor(
    private readonly limits: LimiterFactory,
    private readonly options: () => GuardOptions,
    private readonly log: Logger,
  ) {}

  /** Why PIN entry is refused for this caller now, or undefined. */
  async blocked(caller: string): Promise<string | undefined> {
    const o = this.options();
    if (o.ivrpinfailmax > 0 && (await this.used('caller', o.ivrpinfailmax, caller)) >= o.ivrpinfailmax)
      return 'too many wrong PINs from this number; try again later';
    if (o.ivrpinfailglobal > 0 && (await this.used('global', o.ivrpinfailglobal, GLOBAL_KEY)) >= o.ivrpinfailglobal)
      return 'PIN entry is suspended after too many wrong PINs; try again later';
    return undefined;
  }

  /** Counts one wrong PIN; why further PINs are refused when this one reached a limit, or undefined. */
  async failed(caller: string): Promise<string | undefined> {
    const o = this.options();
    await Promise.all([
      o.ivrpinfailmax > 0 ? this.count('caller', o.ivrpinfailmax, caller) : undefined,
      o.ivrpinfailglobal > 0 ? this.count('global', o.ivrpinfailglobal, GLOBAL_KEY) : undefined,
    ]);
    const why = await this.blocked(caller);
    if (why) this.log.warn({ caller, why }, 'access number: PIN entry refused');
    return why;
  }

  private limiter(kind: string, points: number): RateLimiterAbstract {
    const window = this.options().ivrpinfailwindow;
    const name = `ivr-pin-${kind}-${points}-${window}`;
    let l = this.made.get(name);
    if (!l) this.made.set(name, (l = this.limits.create({ name, points, durationSec: window })));
    return l;
  }

  private async used(kind: string, points: number, key: string): Promise<number> {
    try {
      return (await this.limiter(kind, points).get(key))?.consumedPoints ?? 0;
    } catch (e) {
      this.log.warn({ err: String((e as Error)?.message ?? e) }, 'access number: PIN counter unreadable');
      return 0;
    }
  }

  private async count(kind: string, points: number, key: string): Promise<void> {
    try {
      await this.limiter(kind, points).consume(key);
    } catch (e) {
      // a RateLimiterRes is the limit reached: the count stands; anything else is a counter that did not answer
      if (!(e instanceof RateLimiterRes))
        this.log.warn({ err: String((e as Error)?.message ?? e) }, 'access number: PIN counter not written');
    }
  }
}
