/**
 * The finals Timer J keeps (LingeringFinals): packed into shared chunks, each answered byte for byte until it is
 * due, a key answered with its newest final, chunks dropped once nothing in them is live.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LingeringFinals } from '../../../src/sip/transaction/finals.js';

const final = (i: number, len: number) =>
  Buffer.from(`SIP/2.0 200 OK #${i} `.padEnd(len, String.fromCharCode(97 + (i % 26))));

test('finals across many chunks come back byte for byte until due, then go with their chunks', () => {
  const f = new LingeringFinals();
  const n = 3000;
  for (let i = 0; i < n; i++) f.add(`k${i}`, final(i, 300 + (i % 700)), 1000 + i);
  assert.equal(f.size, n);
  for (let i = 0; i < n; i += 7) assert.deepEqual(f.get(`k${i}`), final(i, 300 + (i % 700)), `final ${i}`);
  assert.equal(f.get('nope'), undefined);
  assert.equal(f.nextDue(), 1000);
  const chunks = () => (f as unknown as { chunks: Buffer[] }).chunks.length;
  const before = chunks();
  assert.ok(before >= 7, `the finals span several chunks (${before})`);
  f.drain(1000 + 2000);
  assert.equal(f.size, n - 2001);
  assert.equal(f.get('k2000'), undefined);
  assert.deepEqual(f.get('k2001'), final(2001, 300 + (2001 % 700)));
  assert.deepEqual(f.get(`k${n - 1}`), final(n - 1, 300 + ((n - 1) % 700)));
  assert.ok(chunks() < before, `chunks of expired finals were dropped (${chunks()} of ${before})`);
  assert.equal(f.nextDue(), 3001);
  f.drain(1e9);
  assert.equal(f.size, 0);
  assert.equal(chunks(), 0);
  assert.equal(f.nextDue(), undefined);
});

test('a key kept again answers with the newer final and lives until the newer one is due', () => {
  const f = new LingeringFinals();
  f.add('a', Buffer.from('first'), 10);
  f.add('b', Buffer.from('other'), 11);
  f.add('a', Buffer.from('second'), 20);
  assert.equal(f.size, 2);
  assert.equal(f.get('a')!.toString(), 'second');
  f.drain(15);
  assert.equal(f.get('a')!.toString(), 'second', 'the older entry coming due does not remove the newer');
  assert.equal(f.get('b'), undefined);
  f.drain(20);
  assert.equal(f.size, 0);
  // after everything went, new entries start afresh
  f.add('c', Buffer.from('third'), 30);
  assert.equal(f.get('c')!.toString(), 'third');
});

test('compaction of the queue keeps every live final answerable', () => {
  const f = new LingeringFinals();
  for (let i = 0; i < 20_000; i++) f.add(`k${i}`, final(i, 200), i);
  f.drain(12_000); // past the compaction threshold (4096 and half the queue)
  assert.equal(f.size, 20_000 - 12_001);
  for (let i = 12_001; i < 20_000; i += 997) assert.deepEqual(f.get(`k${i}`), final(i, 200));
  f.add('late', final(1, 200), 30_000);
  assert.deepEqual(f.get('late'), final(1, 200));
  assert.deepEqual(f.get('k19999'), final(19_999, 200));
});
