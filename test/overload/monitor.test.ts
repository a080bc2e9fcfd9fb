/** Overload control with an injected delay source: the threshold, the refusal counts, disabling and recovery. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OverloadMonitor, EventLoopDelay, type DelaySource } from '../../src/overload/monitor.js';

function fakeSource(): DelaySource & { next: number | undefined } {
  return {
    next: 0,
    sample() {
      return this.next;
    },
  };
}

test('under the threshold everything is admitted; two windows past it refuse new work with a Retry-After', () => {
  const src = fakeSource();
  let t = 1000;
  const m = new OverloadMonitor({ thresholdMs: 100, windowMs: 250, retryAfterS: 3, source: src, now: () => t });
  m.tick();
  src.next = 40;
  t += 250;
  m.tick();
  assert.equal(m.overloaded, false);
  assert.equal(m.shed('sip'), 0);
  assert.equal(m.shed('api'), 0);
  src.next = 180;
  t += 250;
  m.tick();
  // a lone slow window is a stall, not overload
  assert.equal(m.overloaded, false);
  assert.equal(m.shed('sip'), 0);
  t += 250;
  m.tick();
  assert.equal(m.overloaded, true);
  assert.equal(m.shed('sip'), 3);
  assert.equal(m.shed('sip'), 3);
  assert.equal(m.shed('api'), 3);
  assert.deepEqual(m.stats(), {
    delay_ms: 180,
    overloaded: true,
    threshold_ms: 100,
    refused_sip: 2,
    refused_api: 1,
    load_pct: 0,
    load_target_pct: 0,
    rate_limit: 0,
    refused_rate: 0,
    queue_bytes: 0,
    queue_peak_bytes: 0,
    queue_threshold_bytes: 0,
    queue_behind: false,
    refused_queue: 0,
  });
  // the next quiet window admits again; the counts stay
  src.next = 5;
  t += 250;
  m.tick();
  assert.equal(m.overloaded, false);
  assert.equal(m.shed('sip'), 0);
  assert.equal(m.stats().refused_sip, 2);
});

test('a window in which the loop did not turn counts the lateness of the tick itself (a blocked loop)', () => {
  const src = fakeSource();
  src.next = undefined;
  let t = 0;
  const m = new OverloadMonitor({ thresholdMs: 100, windowMs: 250, source: src, now: () => t });
  t = 10;
  m.tick();
  t += 250 + 400;
  m.tick();
  t += 250 + 300;
  m.tick();
  assert.equal(m.stats().delay_ms, 300);
  assert.ok(m.overloaded);
});

test('threshold 0 never refuses; a changed threshold applies at once', () => {
  const src = fakeSource();
  let t = 0;
  const m = new OverloadMonitor({ thresholdMs: 0, source: src, now: () => t });
  src.next = 10_000;
  t = 1;
  m.tick();
  t = 2;
  m.tick();
  assert.equal(m.overloaded, false);
  assert.equal(m.shed('sip'), 0);
  m.thresholdMs = 500;
  assert.equal(m.shed('sip'), 2);
});

test('the event-loop histogram reports a saturated loop, and a quiet one as such', async () => {
  const d = new EventLoopDelay();
  await new Promise((r) => setTimeout(r, 300));
  const quiet = d.sample() ?? 0;
  // every turn of the loop takes 60 ms for 400 ms
  const end = Date.now() + 400;
  await new Promise<void>((resolve) => {
    const turn = () => {
      const stop = Date.now() + 60;
      while (Date.now() < stop);
      if (Date.now() < end) setImmediate(turn);
      else resolve();
    };
    setImmediate(turn);
  });
  await new Promise((r) => setTimeout(r, 15));
  const busy = d.sample();
  d.close();
  assert.ok(quiet < 20, `quiet delay ${quiet} ms`);
  assert.ok(busy !== undefined && busy >= 30, `busy delay ${busy} ms`);
});
