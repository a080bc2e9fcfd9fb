/**
 * The in-process nonce counts keep a 64-value bit window per nonce; they must refuse and accept exactly what the
 * rule says (every nc once, none at or below highest − 64), checked here against a plain Set model on random
 * sequences (out of order, repeats, jumps past the window, nc 0 for a nonce used without qop).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryNonceCounts, NC_WINDOW } from '../../src/state/noncecount.js';

function model(): (nc: number) => 'ok' | 'replay' {
  const seen = new Set<number>();
  let max = 0;
  return (nc) => {
    if (seen.has(nc) || nc <= max - NC_WINDOW) return 'replay';
    seen.add(nc);
    if (nc > max) max = nc;
    return 'ok';
  };
}

test('the bit window agrees with a Set of every count on random sequences', () => {
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const counts = new MemoryNonceCounts(() => 1000, 10);
  let refused = 0;
  for (let s = 0; s < 300; s++) {
    const want = model();
    const nonce = `n${s}`;
    let top = 1;
    for (let i = 0; i < 400; i++) {
      const r = rnd(10);
      // mostly near the top, sometimes a repeat, sometimes a jump of up to 100 (past the window), sometimes 0
      const nc = r < 5 ? top + rnd(3) : r < 8 ? Math.max(0, top - rnd(70)) : r < 9 ? top + rnd(100) : 0;
      top = Math.max(top, nc);
      const got = counts.acceptSync(nonce, nc, 60_000);
      const exp = want(nc);
      if (exp === 'replay') refused++;
      assert.equal(got, exp, `sequence ${s}, step ${i}, nc ${nc}`);
    }
    // the table is bounded at 10 nonces here: start afresh
    (counts as unknown as { nonces: Map<string, unknown> }).nonces.delete(nonce);
  }
  assert.ok(refused > 1000, `the sequences exercised refusals (${refused})`);
});

test('counts at the window edge: highest − 63 once, highest − 64 never; a jump of 64 forgets the old window', () => {
  const c = new MemoryNonceCounts(() => 0);
  assert.equal(c.acceptSync('e', 100, 1000), 'ok');
  assert.equal(c.acceptSync('e', 36, 1000), 'replay');
  assert.equal(c.acceptSync('e', 37, 1000), 'ok');
  assert.equal(c.acceptSync('e', 37, 1000), 'replay');
  assert.equal(c.acceptSync('e', 68, 1000), 'ok'); // bit 32: the upper half
  assert.equal(c.acceptSync('e', 68, 1000), 'replay');
  assert.equal(c.acceptSync('e', 164, 1000), 'ok');
  assert.equal(c.acceptSync('e', 101, 1000), 'ok');
  assert.equal(c.acceptSync('e', 100, 1000), 'replay');
  assert.equal(c.acceptSync('e', 164 + 32, 1000), 'ok');
  assert.equal(c.acceptSync('e', 164, 1000), 'replay'); // moved from the lower half to the upper one
  assert.equal(c.acceptSync('e', 165, 1000), 'ok');
});
