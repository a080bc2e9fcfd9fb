/** Credit arithmetic of a bridged two-leg call (callback / p2p): both legs are paid by one account. */
import { rateCall, MAX_CALL_SECONDS, type Rate } from '../../domain/rating/rate.js';

/** Cost of `seconds` on a rate (0 for an unrated on-net leg). */
export function legCost(seconds: number, rate: Rate | undefined): number {
  if (!rate || seconds <= 0) return 0;
  return rateCall(Math.ceil(seconds), rate).cost;
}

/**
 * The longest bridge time x (whole seconds, ≤ limit) such that leg A, already up for `aElapsed` seconds, and leg B
 * both stay affordable: cost_A(aElapsed + x) + cost_B(x) ≤ credit. Costs are monotonic in the duration, so a
 * binary search is exact. Returns 0 when not even one second fits.
 */
export function maxBridgeSeconds(
  credit: number,
  rateA: Rate | undefined,
  rateB: Rate | undefined,
  aElapsed = 0,
  limit = MAX_CALL_SECONDS,
): number {
  const fits = (x: number) => legCost(aElapsed + x, rateA) + legCost(x, rateB) <= credit;
  if (!fits(1)) return 0;
  let lo = 1;
  let hi = Math.max(1, Math.floor(limit));
  if (fits(hi)) return hi;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}
