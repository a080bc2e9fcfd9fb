import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeTimers, TimerWheel } from '../../../src/sip/transaction/timers.js';

test('timer wheel fires entries after their delay, in one interval, and honours cancel', () => {
  let now = 0;
  const wheel = new TimerWheel(100, 8, () => now);
  const fired: string[] = [];
  wheel.add(250, () => fired.push('a'));
  const b = wheel.add(300, () => fired.push('b'));
  wheel.add(2000, () => fired.push('long')); // more than one lap of 8 slots
  b.cancel();
  now = 200;
  wheel.tick();
  assert.deepEqual(fired, []);
  now = 300;
  wheel.tick();
  assert.deepEqual(fired, ['a']);
  now = 1900;
  wheel.tick();
  assert.deepEqual(fired, ['a']);
  now = 2000;
  wheel.tick();
  assert.deepEqual(fired, ['a', 'long']);
  assert.equal(wheel.size, 0);
  wheel.stop();
});

test('fake timers fire in time order, including timers set by callbacks', () => {
  const t = new FakeTimers();
  const out: number[] = [];
  t.set(30, () => out.push(30));
  t.set(10, () => {
    out.push(10);
    t.set(5, () => out.push(15));
  });
  t.advance(29);
  assert.deepEqual(out, [10, 15]);
  t.advance(1);
  assert.deepEqual(out, [10, 15, 30]);
  assert.equal(t.now(), 30);
});
