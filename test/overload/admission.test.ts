/**
 * Rate admission of new SIP requests with an injected clock and loop utilisation: open below the target, the rate
 * learned from what was admitted in a saturated window, continuations borrowing, additive increase, reopening.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateAdmission } from '../../src/overload/admission.js';
import { OverloadMonitor, type DelaySource } from '../../src/overload/monitor.js';

function clock(start = 1000) {
  const c = { t: start, now: () => c.t };
  return c;
}

/** Offers one new request every `everyMs` for `ms`; returns how many were admitted. */
function offer(a: RateAdmission, c: { t: number }, ms: number, everyMs = 1, continuation = false): number {
  let ok = 0;
  for (const end = c.t + ms; c.t < end; c.t += everyMs) if (a.admit(continuation)) ok++;
  return ok;
}

test('below the target every request is admitted; a saturated window sets the rate to what it served', () => {
  const c = clock();
  const a = new RateAdmission({ target: 0.95, now: c.now });
  // 1000/s offered, loop at 80%: open
  assert.equal(offer(a, c, 250), 250);
  a.window(0.8);
  assert.equal(a.rate, Infinity);
  // the same load saturates the loop: one window is a stall, the second sets the rate to 1000/s × 0.95
  assert.equal(offer(a, c, 250), 250);
  a.window(1);
  assert.equal(a.rate, Infinity);
  assert.equal(offer(a, c, 250), 250);
  a.window(1);
  assert.equal(a.rate, 950);
  // a second saturated window: at most 10% less per window, from what was admitted (≈ 950/s)
  const admitted = offer(a, c, 250);
  assert.ok(admitted >= 235 && admitted <= 240, `admitted ${admitted}`);
  a.window(1);
  assert.ok(a.rate >= 890 && a.rate <= 915, `rate ${a.rate}`);
  // held there, 2000/s offered for a second admit about the rate, the rest refused
  const rate = a.rate;
  const ok = offer(a, c, 1000, 0.5);
  assert.ok(ok >= rate - 1 && ok <= rate + Math.max(4, rate / 10) + 1, `admitted ${ok} at ${rate}/s`);
});

test('the rate never goes below minRate', () => {
  const c = clock();
  const a = new RateAdmission({ target: 0.9, minRate: 50, now: c.now });
  for (let i = 0; i < 40; i++) {
    offer(a, c, 250, 50);
    a.window(1);
  }
  assert.equal(a.rate, 50);
});

test('the rate does not spiral below 80% of what was recently served under the target', () => {
  const c = clock();
  const a = new RateAdmission({ target: 0.9, now: c.now });
  offer(a, c, 250, 2); // 500/s at 60%
  a.window(0.6);
  // the loop stays busy whatever the rate (another process takes the CPU)
  for (let i = 0; i < 20; i++) {
    offer(a, c, 250, 2);
    a.window(1);
  }
  const floor = 500 * 0.8 * 0.99 ** 20;
  assert.ok(Math.abs(a.rate - floor) < 1e-6, `rate ${a.rate}, floor ${floor}`);
});

test('a continuation borrows one burst of tokens a new request may not use', () => {
  const c = clock();
  const a = new RateAdmission({ target: 0.95, minRate: 1, now: c.now });
  offer(a, c, 250, 25);
  a.window(1);
  offer(a, c, 250, 25); // 10 in the window: 40/s
  a.window(1); // rate 38/s, burst 4, the bucket empty
  assert.equal(a.rate, 38);
  assert.equal(a.admit(false), false);
  // a new request is refused while the bucket is empty, a continuation takes up to 4 tokens on credit
  let cont = 0;
  for (let i = 0; i < 10; i++) if (a.admit(true)) cont++;
  assert.equal(cont, 4);
  assert.equal(a.admit(false), false);
  // the debt is repaid before a new request passes again: 5 tokens at 38/s take 132 ms
  c.t += 100;
  assert.equal(a.admit(false), false);
  c.t += 40;
  assert.equal(a.admit(false), true);
});

test('below the target by 5 points the rate grows while it refuses, and opens after 8 quiet windows', () => {
  const c = clock();
  const a = new RateAdmission({ target: 0.95, now: c.now });
  offer(a, c, 250, 2.5);
  a.window(1);
  offer(a, c, 250, 2.5); // 400/s
  a.window(1);
  assert.equal(a.rate, 380);
  // just under the target: held
  offer(a, c, 250, 1);
  a.window(0.93);
  assert.equal(a.rate, 380);
  // clearly under it and still refusing: up by the headroom shown (95 / 85), at most 25% per window
  offer(a, c, 250, 1);
  a.window(0.85);
  assert.ok(Math.abs(a.rate - (380 * 0.95) / 0.85) < 1e-9, `rate ${a.rate}`);
  offer(a, c, 250, 1);
  a.window(0.5);
  assert.ok(Math.abs(a.rate - ((380 * 0.95) / 0.85) * 1.25) < 1e-9, `rate ${a.rate}`);
  // demand under the rate, nothing refused: open after 8 windows
  for (let i = 0; i < 7; i++) {
    c.t += 10;
    assert.equal(offer(a, c, 240, 10), 24);
    a.window(0.5);
    assert.notEqual(a.rate, Infinity);
  }
  c.t += 10;
  offer(a, c, 240, 10);
  a.window(0.5);
  assert.equal(a.rate, Infinity);
});

test('target 0 never limits; a window without a measurement changes nothing', () => {
  const c = clock();
  const a = new RateAdmission({ target: 0, now: c.now });
  offer(a, c, 250);
  a.window(1);
  assert.equal(a.rate, Infinity);
  assert.equal(offer(a, c, 250), 250);
  a.target = 0.9;
  a.window(undefined);
  assert.equal(a.rate, Infinity);
});

test('the monitor: rate refusals answer Retry-After and count for SIP only; the API is refused by delay alone', () => {
  const c = clock();
  const delay: DelaySource = { sample: () => 1 };
  let load = 0.5;
  const m = new OverloadMonitor({
    thresholdMs: 100,
    loadTargetPct: 90,
    source: delay,
    load: { sample: () => load },
    now: c.now,
  });
  c.t += 250;
  load = 1;
  m.tick(); // one saturated window is a stall: still open
  for (let i = 0; i < 100; i++) assert.equal(m.shed('sip'), 0);
  c.t += 250;
  m.tick(); // 100 in 250 ms at full load, the second window in a row: 360/s
  assert.equal(m.stats().rate_limit, 360);
  assert.equal(m.stats().load_pct, 100);
  assert.equal(m.shed('sip'), 2);
  assert.equal(m.shed('sip', true), 0);
  assert.equal(m.shed('api'), 0);
  const s = m.stats();
  assert.equal(s.refused_sip, 1);
  assert.equal(s.refused_rate, 1);
  assert.equal(s.refused_api, 0);
  assert.equal(s.overloaded, false);
  // turned off by a reload: admits again at once
  m.loadTargetPct = 0;
  assert.equal(m.shed('sip'), 0);
  assert.equal(m.stats().load_target_pct, 0);
});
