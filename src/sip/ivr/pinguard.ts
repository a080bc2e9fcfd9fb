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

/** Why PIN entry is refused, from the wrong PINs counted for the caller number and for everyone (0: a limit off). */
function reason(o: GuardOptions, mine: number, all: number): string | undefined {
  if (o.ivrpinfailmax > 0 && mine >= o.ivrpinfailmax) return 'too many wrong PINs from this number; try again later';
  if (o.ivrpinfailglobal > 0 && all >= o.ivrpinfailglobal)
    return 'PIN entry is suspended after too many wrong PINs; try again later';
  return undefined;
}

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
    const [mine, all] = await Promise.all([
      o.ivrpinfailmax > 0 ? this.used('caller', o.ivrpinfailmax, caller) : 0,
      o.ivrpinfailglobal > 0 ? this.used('global', o.ivrpinfailglobal, GLOBAL_KEY) : 0,
    ]);
    return reason(o, mine, all);
  }

  /** Counts one wrong PIN; why further PINs are refused when this one reached a limit, or undefined. */
  async failed(caller: string): Promise<string | undefined> {
    const o = this.options();
    const [mine, all] = await Promise.all([
      o.ivrpinfailmax > 0 ? this.count('caller', o.ivrpinfailmax, caller) : 0,
      o.ivrpinfailglobal > 0 ? this.count('global', o.ivrpinfailglobal, GLOBAL_KEY) : 0,
    ]);
    const why = reason(o, mine, all);
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

  /** Counts one; answers the count now (the limit reached is a count too), 0 when the counter did not answer. */
  private async count(kind: string, points: number, key: string): Promise<number> {
    try {
      return (await this.limiter(kind, points).consume(key)).consumedPoints;
    } catch (e) {
      if (e instanceof RateLimiterRes) return e.consumedPoints;
      this.log.warn({ err: String((e as Error)?.message ?? e) }, 'access number: PIN counter not written');
      return 0;
    }
  }
}
