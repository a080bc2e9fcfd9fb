/**
 * Rates and the exact cost arithmetic (integer micro-units, whole seconds).
 *
 * Billing steps: a tariff "A/B" (e.g. 60/60, 30/6, 1/1) is stored as minduration=A, increment=B: an answered
 * call is billed at least A seconds, and every second beyond A is rounded up to the next multiple of B after A
 * (30/6: 1..30 s → 30, 31 s → 36, 37 s → 42). minduration 0 means the grid starts at 0 (0/60: 1 s → 60).
 * An unanswered call (duration 0) is billed 0 seconds and costs nothing (no connect fee).
 * cost = connectfee + price_per_minute × billed / 60, rounded UP to a whole micro-unit.
 */

export interface Rate {
  id: number;
  planId: number;
  prefix: string;
  destination: string;
  /** micro-units per minute */
  price: number;
  /** micro-units per answered call */
  connectfee: number;
  /** seconds */
  minduration: number;
  /** seconds (≥ 1) */
  increment: number;
  currency: string;
  /** epoch ms, inclusive; null = open */
  validFrom: number | null;
  /** epoch ms, exclusive; null = open */
  validTo: number | null;
}

/** Calls are never allowed longer than this (maxduration when the price is 0): 24 hours. */
export const MAX_CALL_SECONDS = 86_400;

export function isValidAt(r: Pick<Rate, 'validFrom' | 'validTo'>, at: number): boolean {
  return (r.validFrom === null || at >= r.validFrom) && (r.validTo === null || at < r.validTo);
}

/** Seconds billed for a call of `duration` seconds. */
export function billedSeconds(duration: number, minduration: number, increment: number): number {
  if (!(duration > 0)) return 0;
  const d = Math.ceil(duration);
  const min = Math.max(0, Math.floor(minduration));
  const inc = Math.max(1, Math.floor(increment));
  if (d <= min) return min;
  return min + Math.ceil((d - min) / inc) * inc;
}

/** ceil(a*b/60) for non-negative integers, exact even beyond 2^53. */
function perMinute(price: number, seconds: number): number {
  const p = price * seconds;
  // below 2^40 the float division is exact enough for floor() to be right; beyond, BigInt
  if (p < 2 ** 40) return Math.floor((p + 59) / 60);
  return Number((BigInt(price) * BigInt(seconds) + 59n) / 60n);
}

/** Cost in micro-units of a call with the given billed seconds (0 billed seconds cost nothing). */
export function costOfBilled(billed: number, r: Pick<Rate, 'price' | 'connectfee'>): number {
  if (billed <= 0) return 0;
  return r.connectfee + perMinute(r.price, billed);
}

export interface Rated {
  billed: number;
  cost: number;
}

export function rateCall(duration: number, r: Pick<Rate, 'price' | 'connectfee' | 'minduration' | 'increment'>): Rated {
  const billed = billedSeconds(duration, r.minduration, r.increment);
  return { billed, cost: costOfBilled(billed, r) };
}

/**
 * The largest whole number of seconds a call may last so that its cost stays ≤ credit (0 when even the first
 * block with the connect fee is not affordable), capped at `cap` seconds.
 */
export function maxDuration(
  credit: number,
  r: Pick<Rate, 'price' | 'connectfee' | 'minduration' | 'increment'>,
  cap = MAX_CALL_SECONDS,
): number {
  const min = Math.max(0, Math.floor(r.minduration));
  const inc = Math.max(1, Math.floor(r.increment));
  const first = min > 0 ? min : inc; // the first billed block
  const avail = credit - r.connectfee;
  if (avail < 0) return 0;
  let best: number;
  if (r.price <= 0) {
    best = Number.POSITIVE_INFINITY;
  } else {
    // ceil(price*b/60) ≤ avail  ⇔  price*b ≤ 60*avail  ⇔  b ≤ floor(60*avail/price)
    const bmax = Number((60n * BigInt(avail)) / BigInt(r.price));
    if (bmax < first) return 0;
    best = first + Math.floor((bmax - first) / inc) * inc; // largest grid point ≤ bmax; billed(best) = best
  }
  return Math.min(best, cap);
}

/** "0.012" per minute style: micro-units with at least 4 decimals, trailing zeros beyond 4 dropped. */
export function formatPrice(micros: number): string {
  const neg = micros < 0;
  const a = Math.abs(micros);
  let frac = String(a % 1_000_000).padStart(6, '0');
  while (frac.length > 4 && frac.endsWith('0')) frac = frac.slice(0, -1);
  return `${neg ? '-' : ''}${Math.floor(a / 1_000_000)}.${frac}`;
}
