/**
 * Digest replay state shared by two nodes (two DigestAuth with the same secret): a nonce issued by one is accepted by
 * the other, a nonce count or a no-qop nonce used on one is a replay on the other; on the in-process stores and on
 * Redis. A store that does not answer refuses the request ('unavailable'), never accepts it.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DigestAuth } from '../../../src/sip/services/digest.js';
import { MemoryOnce } from '../../../src/state/once.js';
import { MemoryNonceCounts } from '../../../src/state/noncecount.js';
import { openState, type State, type NonceCounts, type OnceStore } from '../../../src/state/index.js';
import { REDIS_URL, redisMissing, testPrefix, dropPrefix } from '../../state/redis.js';
import { authorize } from './fake.js';

const pw = (u: string) => (u === 'alice' ? 'secret' : null);

async function twoNodes(a: { nonces: NonceCounts; once: OnceStore }, b: { nonces: NonceCounts; once: OnceStore }) {
  const secret = randomBytes(32);
  const na = new DigestAuth({ ttlMs: 60_000, secret, shared: a });
  const nb = new DigestAuth({ ttlMs: 60_000, secret, shared: b });
  const [ch] = na.challenges('r');
  const first = authorize(ch!, 'alice', 'secret', 'REGISTER', 'sip:r', 1);
  assert.equal((await nb.verify([first], 'r', 'REGISTER', 'sip:r', pw)).ok, true, 'B accepts a nonce A issued');
  const again = await na.verify([first], 'r', 'REGISTER', 'sip:r', pw);
  assert.equal(!again.ok && again.why, 'bad', 'nc 1 used on B is a replay on A');
  const second = authorize(ch!, 'alice', 'secret', 'REGISTER', 'sip:r', 2);
  assert.equal((await na.verify([second], 'r', 'REGISTER', 'sip:r', pw)).ok, true);
  const plain = authorize(nb.challenges('r')[0]!, 'alice', 'secret', 'REGISTER', 'sip:r', 1, { noQop: true });
  assert.equal((await na.verify([plain], 'r', 'REGISTER', 'sip:r', pw)).ok, true);
  const plainAgain = await nb.verify([plain], 'r', 'REGISTER', 'sip:r', pw);
  assert.equal(!plainAgain.ok && plainAgain.why, 'stale', 'a no-qop nonce is single-use across nodes');
  // another secret: the nonce is not ours
  const other = new DigestAuth({ ttlMs: 60_000, shared: a });
  const r = await other.verify([second], 'r', 'REGISTER', 'sip:r', pw);
  assert.equal(!r.ok && r.why, 'stale');
}

test('two nodes on one in-process store share the replay state', async () => {
  const shared = { nonces: new MemoryNonceCounts(), once: new MemoryOnce() };
  await twoNodes(shared, shared);
});

test('a shared store that fails: unavailable, never accepted', async () => {
  const broken = {
    nonces: { accept: () => Promise.reject(new Error('down')), tracked: () => undefined },
    once: { claim: () => Promise.reject(new Error('down')) },
  };
  const d = new DigestAuth({ ttlMs: 60_000, shared: broken });
  const [ch] = d.challenges('r');
  const r = await d.verify([authorize(ch!, 'alice', 'secret', 'REGISTER', 'sip:r', 1)], 'r', 'REGISTER', 'sip:r', pw);
  assert.equal(!r.ok && r.why, 'unavailable');
  assert.match(!r.ok ? r.detail : '', /unavailable \(down\)/);
});

const missing = await redisMissing();

describe('digest replay state on Redis, two nodes', { skip: missing ?? false }, () => {
  const prefix = testPrefix();
  let a: State;
  let b: State;
  before(async () => {
    a = await openState({ redisUrl: REDIS_URL, prefix, nodeId: 'a' });
    b = await openState({ redisUrl: REDIS_URL, prefix, nodeId: 'b' });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await dropPrefix(prefix);
  });
  test('a count or a no-qop nonce used on one node is refused on the other', async () => {
    await twoNodes(a, b);
  });
});
