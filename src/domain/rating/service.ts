/** Tariff plans and rating: longest-prefix match, number normalisation, cost and maxduration. */
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import type { ConfigStore } from '../../config/store.js';
import { PrefixIndex } from './index.js';
import { toE164, countryCodeOf, InvalidNumberError } from './normalize.js';
import { DomainError } from '../errors.js';
import { maxDuration, rateCall, type Rate, type Rated } from './rate.js';

export { InvalidNumberError } from './normalize.js';
export type { Rate } from './rate.js';

/** The plan every user without one (and without a reseller with one) is rated on. */
export const DEFAULT_PLAN = 'default';

export interface Plan {
  id: number;
  name: string;
  currency: string;
  index: PrefixIndex;
}

/** No tariff matches the number (or the user has no plan at all). */
export class NoRateError extends DomainError {
  constructor(message: string) {
    super(message, 'notfound', { legacyStatus: 404 });
  }
}

export interface Quote {
  /** The normalised number (E.164 digits without '+'). */
  number: string;
  plan: Plan;
  rate: Rate;
}

/** What rating needs to know of a user. */
export interface RatedUser {
  id: number;
  country: string;
}

type TariffRow = Database['tb_tariffs'] extends infer T ? { [K in keyof T]: any } : never;

export function rateFromRow(r: TariffRow): Rate {
  return {
    id: Number(r.id),
    planId: Number(r.planid),
    prefix: String(r.prefix),
    destination: String(r.destination ?? ''),
    price: Number(r.price),
    connectfee: Number(r.connectfee),
    minduration: Number(r.minduration),
    increment: Math.max(1, Number(r.increment)),
    currency: String(r.currency),
    validFrom: r.valid_from === null || r.valid_from === undefined ? null : Number(r.valid_from),
    validTo: r.valid_to === null || r.valid_to === undefined ? null : Number(r.valid_to),
  };
}

export class RatingService {
  private byId = new Map<number, Plan>();
  private byName = new Map<string, Plan>();
  private loadedAt = 0;

  constructor(
    readonly db: Kysely<Database>,
    readonly config: ConfigStore,
  ) {}

  /** Loads the tariff plans into memory (at start and after imports). Returns the counts loaded. */
  async load(): Promise<{ plans: number; rates: number }> {
    const plans = await this.db.selectFrom('tb_tariffplans').selectAll().execute();
    const rows = await this.db.selectFrom('tb_tariffs').selectAll().orderBy('planid').orderBy('id').execute();
    const counts = new Map<number, number>();
    for (const r of rows) counts.set(Number(r.planid), (counts.get(Number(r.planid)) ?? 0) + 1);
    const byId = new Map<number, Plan>();
    const byName = new Map<string, Plan>();
    for (const p of plans) {
      const plan: Plan = {
        id: Number(p.id),
        name: p.name,
        currency: p.currency,
        index: new PrefixIndex(counts.get(Number(p.id)) ?? 16),
      };
      byId.set(plan.id, plan);
      byName.set(plan.name, plan);
    }
    let n = 0;
    for (const r of rows) {
      const plan = byId.get(Number(r.planid));
      if (!plan || !/^\d{1,32}$/.test(r.prefix)) continue; // orphan or malformed row: never rated
      plan.index.add(rateFromRow(r as TariffRow));
      n++;
    }
    this.byId = byId;
    this.byName = byName;
    this.loadedAt = Date.now();
    return { plans: byId.size, rates: n };
  }

  get lastLoad(): number {
    return this.loadedAt;
  }

  plans(): Plan[] {
    return [...this.byId.values()];
  }

  plan(idOrName: number | string): Plan | undefined {
    return typeof idOrName === 'number' ? this.byId.get(idOrName) : this.byName.get(idOrName);
  }

  /** The plan of a user: their own tariffid, else the nearest parent's, else the plan named "default". */
  async planFor(userId: number): Promise<Plan | undefined> {
    let id = userId;
    const seen = new Set<number>();
    for (let depth = 0; depth < 32 && id && !seen.has(id); depth++) {
      seen.add(id);
      const r = await this.db
        .selectFrom('tb_users')
        .select(['tariffid', 'parentid'])
        .where('id', '=', id)
        .executeTakeFirst();
      if (!r) break;
      if (r.tariffid !== null && r.tariffid !== undefined) {
        const p = this.byId.get(Number(r.tariffid));
        if (p) return p;
      }
      id = Number(r.parentid);
    }
    return this.byName.get(DEFAULT_PLAN);
  }

  /**
   * E.164 digits (no '+') of a dialled number, for a caller whose tb_users.country is `country`. Throws
   * InvalidNumberError.
   */
  normalize(raw: string, country = ''): string {
    const o = this.config.options;
    return toE164(raw, {
      internationalPrefix: o.internationalprefix,
      nationalPrefix: o.nationalprefix,
      countryCode: countryCodeOf(country, o.defaultcountrycode),
    });
  }

  /** Longest-prefix rate of a plan for normalised digits at a time (hot path: no I/O, no allocation). */
  lookup(planId: number, digits: string, at = Date.now()): Rate | undefined {
    return this.byId.get(planId)?.index.lookup(digits, at);
  }

  /** The rate a user pays to a dialled number. Throws InvalidNumberError (bad number) or NoRateError. */
  async quote(user: RatedUser, bnum: string, at = Date.now()): Promise<Quote> {
    const number = this.normalize(bnum, user.country);
    const plan = await this.planFor(user.id);
    if (!plan) throw new NoRateError(`no tariff plan for this account (and no plan named "${DEFAULT_PLAN}")`);
    const rate = plan.index.lookup(number, at);
    if (!rate) throw new NoRateError(`no rate for ${number} in tariff plan "${plan.name}"`);
    return { number, plan, rate };
  }

  rate(duration: number, rate: Rate): Rated {
    return rateCall(duration, rate);
  }

  maxDuration(credit: number, rate: Rate): number {
    return maxDuration(credit, rate);
  }

  /** A random number that a rate of the plan covers (for generated test CDRs); undefined for an empty plan. */
  randomNumber(planId: number, rnd: () => number = Math.random): string | undefined {
    const plan = this.byId.get(planId);
    if (!plan || plan.index.size === 0) return undefined;
    const prefixes = plan.index.prefixes();
    const p = prefixes[Math.floor(rnd() * prefixes.length)]!;
    let s = p;
    while (s.length < Math.max(11, p.length + 4)) s += String(Math.floor(rnd() * 10));
    return s;
  }
}

export function isRatingError(e: unknown): e is InvalidNumberError | NoRateError {
  return e instanceof InvalidNumberError || e instanceof NoRateError;
}
