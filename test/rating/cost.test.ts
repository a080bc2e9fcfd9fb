import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  billedSeconds,
  costOfBilled,
  rateCall,
  maxDuration,
  formatPrice,
  MAX_CALL_SECONDS,
} from '../../src/domain/rating/rate.js';

const r = (price: number, connectfee: number, minduration: number, increment: number) => ({
  price,
  connectfee,
  minduration,
  increment,
});

test('60/60 at 0.012/min: whole minutes', () => {
  const t = r(12_000, 0, 60, 60);
  assert.deepEqual(rateCall(0, t), { billed: 0, cost: 0 });
  assert.deepEqual(rateCall(1, t), { billed: 60, cost: 12_000 });
  assert.deepEqual(rateCall(60, t), { billed: 60, cost: 12_000 });
  assert.deepEqual(rateCall(61, t), { billed: 120, cost: 24_000 });
  assert.deepEqual(rateCall(3600, t), { billed: 3600, cost: 720_000 });
});

test('30/6 with a connect fee: 30 s minimum, then 6 s steps', () => {
  const t = r(100_000, 50_000, 30, 6); // 0.10/min + 0.05 per call
  assert.deepEqual(rateCall(1, t), { billed: 30, cost: 100_000 });
  assert.deepEqual(rateCall(30, t), { billed: 30, cost: 100_000 });
  assert.deepEqual(rateCall(31, t), { billed: 36, cost: 110_000 });
  assert.deepEqual(rateCall(36, t), { billed: 36, cost: 110_000 });
  assert.deepEqual(rateCall(37, t), { billed: 42, cost: 120_000 });
  assert.deepEqual(rateCall(0, t), { billed: 0, cost: 0 }, 'unanswered: no connect fee');
});

test('1/1: per second, cost rounded up to a whole micro-unit', () => {
  const t = r(7_000, 0, 1, 1); // 0.007/min = 116.67 micro/s
  assert.deepEqual(rateCall(1, t), { billed: 1, cost: 117 });
  assert.deepEqual(rateCall(60, t), { billed: 60, cost: 7_000 });
  assert.deepEqual(rateCall(61, t), { billed: 61, cost: 7_117 });
});

test('minimums and grids: 0/60, 120/30, increment 0 treated as 1', () => {
  assert.equal(billedSeconds(1, 0, 60), 60);
  assert.equal(billedSeconds(61, 0, 60), 120);
  assert.equal(billedSeconds(100, 120, 30), 120);
  assert.equal(billedSeconds(121, 120, 30), 150);
  assert.equal(billedSeconds(150, 120, 30), 150);
  assert.equal(billedSeconds(7, 0, 0), 7);
  assert.equal(costOfBilled(0, { price: 1, connectfee: 99 }), 0);
  assert.equal(costOfBilled(1, { price: 0, connectfee: 99 }), 99);
});

test('maxduration hand-checked to the second', () => {
  assert.equal(maxDuration(50_000, r(12_000, 0, 60, 60)), 240); // 4 min = 0.048; 5 min = 0.06 > 0.05
  assert.equal(maxDuration(1_000_000, r(100_000, 50_000, 30, 6)), 570); // 0.05 + 570 s at 0.10 = exactly 1.00
  assert.equal(maxDuration(999_999, r(100_000, 50_000, 30, 6)), 564);
  assert.equal(maxDuration(99_999, r(100_000, 50_000, 30, 6)), 0, 'the first 30 s block with the fee costs 0.10');
  assert.equal(maxDuration(100_000, r(100_000, 50_000, 30, 6)), 30);
  assert.equal(maxDuration(1_000, r(7_000, 0, 1, 1)), 8); // 8 s = 934, 9 s = 1050
  assert.equal(maxDuration(49_999, r(0, 50_000, 0, 1)), 0, 'connect fee not affordable');
  assert.equal(maxDuration(50_000, r(0, 50_000, 0, 1)), MAX_CALL_SECONDS, 'free per minute: capped');
  assert.equal(maxDuration(0, r(12_000, 0, 60, 60)), 0);
  assert.equal(maxDuration(-5, r(12_000, 0, 60, 60)), 0);
});

function refBilled(d: number, min: number, inc: number): number {
  if (d <= 0) return 0;
  inc = Math.max(1, inc);
  // smallest grid point ≥ d; grid: min, min+inc, … (min>0) or inc, 2inc, … (min=0)
  let g = min > 0 ? min : inc;
  while (g < d) g += inc;
  return g;
}
const refCost = (billed: number, price: number, fee: number) =>
  billed === 0 ? 0 : fee + Number((BigInt(price) * BigInt(billed) + 59n) / 60n);

test('property: billed seconds and cost match a reference; maxduration matches brute force', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1_000, max: 300_000 }),
      fc.integer({ min: 0, max: 100_000 }),
      fc.integer({ min: 0, max: 120 }),
      fc.integer({ min: 1, max: 60 }),
      fc.integer({ min: 0, max: 400_000 }),
      (price, fee, min, inc, credit) => {
        const t = r(price, fee, min, inc);
        for (const d of [0, 1, 2, min, min + 1, min + inc, min + inc + 1, 59, 60, 61, 3599]) {
          assert.equal(billedSeconds(d, min, inc), refBilled(d, min, inc));
          assert.equal(rateCall(d, t).cost, refCost(refBilled(d, min, inc), price, fee));
        }
        // brute force: the largest d with cost(d) ≤ credit (cost is non-decreasing in d)
        let best = 0;
        let g = min > 0 ? min : inc; // the grid point billed for d (stepped along, as refBilled does)
        for (let d = 1; d <= (60 * 400_000) / 1_000 + 200; d++) {
          while (g < d) g += inc;
          if (refCost(g, price, fee) <= credit) best = d;
          else break;
        }
        assert.equal(maxDuration(credit, t, 10_000_000), best);
        assert.equal(maxDuration(credit, t), Math.min(best, MAX_CALL_SECONDS));
      },
    ),
    { numRuns: 300 },
  );
});

test('exact beyond 2^53 intermediate products', () => {
  const t = r(9_000_000_000_000, 0, 1, 1);
  assert.equal(rateCall(7, t).cost, 1_050_000_000_000);
  assert.equal(maxDuration(1_050_000_000_000, t), 7);
});

test('price text has at least 4 decimals', () => {
  assert.equal(formatPrice(12_000), '0.0120');
  assert.equal(formatPrice(12_345), '0.012345');
  assert.equal(formatPrice(1_500_000), '1.5000');
  assert.equal(formatPrice(0), '0.0000');
});
