/**
 * The behaviour of every state store, one test body run twice: on the in-process implementation and on Redis
 * (127.0.0.1:6379, a key prefix of this run, deleted afterwards).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { openState, mutate, type State, type HashEntry } from '../../src/state/index.js';
import { REDIS_URL, redisMissing, testPrefix, dropPrefix, countKeys, sleep, until } from './redis.js';

const missing = await redisMissing();

function storeTests(kind: 'memory' | 'redis') {
  const prefix = testPrefix();
  describe(`state stores: ${kind}`, { skip: kind === 'redis' ? (missing ?? false) : false, timeout: 30_000 }, () => {
    let s: State;
    before(async () => {
      s = await openState(kind === 'redis' ? { redisUrl: REDIS_URL, prefix, nodeId: 'n1' } : { nodeId: 'n1' });
      assert.equal(s.kind, kind);
    });
    after(async () => {
      await s?.close();
      if (kind === 'redis') {
        await dropPrefix(prefix);
        assert.equal(await countKeys(prefix), 0, 'no key left behind');
      }
    });

    test('once: the first claim wins, later ones are refused until the TTL has passed', async () => {
      assert.equal(await s.once.claim('salt:a', 200), true);
      assert.equal(await s.once.claim('salt:a', 200), false);
      assert.equal(await s.once.claim('salt:b', 200), true);
      await sleep(300);
      assert.equal(await s.once.claim('salt:a', 200), true, 'claimable again after the TTL');
      assert.equal(await s.once.claim('salt:a', 200), false);
    });

    test('nonce counts: replays refused, out of order within the window accepted once', async () => {
      const n = `nonce-${kind}`;
      assert.equal(await s.nonces.accept(n, 1, 10_000), 'ok');
      assert.equal(await s.nonces.accept(n, 1, 10_000), 'replay');
      assert.equal(await s.nonces.accept(n, 3, 10_000), 'ok');
      assert.equal(await s.nonces.accept(n, 2, 10_000), 'ok', 'late but within the window');
      assert.equal(await s.nonces.accept(n, 2, 10_000), 'replay');
      assert.equal(await s.nonces.accept(n, 100, 10_000), 'ok');
      assert.equal(await s.nonces.accept(n, 36, 10_000), 'replay', 'at highest - 64: too old');
      assert.equal(await s.nonces.accept(n, 37, 10_000), 'ok');
      assert.equal(await s.nonces.accept(n, 37, 10_000), 'replay');
      assert.equal(await s.nonces.accept(n, 3, 10_000), 'replay', 'trimmed below the window, still refused');
      assert.equal(await s.nonces.accept(`${n}-other`, 1, 10_000), 'ok', 'counts are per nonce');
    });

    test('nonce counts: the state of a nonce goes with its TTL', async () => {
      const n = `short-${kind}`;
      assert.equal(await s.nonces.accept(n, 5, 150), 'ok');
      assert.equal(await s.nonces.accept(n, 5, 150), 'replay');
      await sleep(250);
      assert.equal(await s.nonces.accept(n, 5, 150), 'ok');
    });

    test('bans: ban, synchronous look-up, list, expiry, unban', async () => {
      const t = Date.now();
      assert.equal(s.bans.isBanned('198.51.100.1'), false);
      await s.bans.ban({ ip: '198.51.100.1', reason: 'test', until: t + 60_000, created_at: t });
      await s.bans.ban({ ip: '198.51.100.2', reason: 'short', until: t + 150, created_at: t + 1 });
      assert.equal(s.bans.isBanned('198.51.100.1'), true);
      assert.equal(s.bans.get('198.51.100.1')?.reason, 'test');
      assert.deepEqual(
        s.bans.list().map((b) => b.ip),
        ['198.51.100.1', '198.51.100.2'],
      );
      await sleep(200);
      assert.equal(s.bans.isBanned('198.51.100.2'), false, 'expired');
      await s.bans.unban('198.51.100.1');
      assert.equal(s.bans.isBanned('198.51.100.1'), false);
      assert.deepEqual(s.bans.list(), []);
    });

    test('failures: counted in a sliding window, cleared on demand and by unban', async () => {
      const ip = `203.0.113.${kind === 'redis' ? 2 : 1}`;
      assert.equal(await s.bans.recordFailure(ip, 200), 1);
      assert.equal(await s.bans.recordFailure(ip, 200), 2);
      assert.equal(await s.bans.recordFailure(ip, 200), 3);
      await sleep(250);
      assert.equal(await s.bans.recordFailure(ip, 200), 1, 'older failures left the window');
      await s.bans.clearFailures(ip);
      assert.equal(await s.bans.recordFailure(ip, 60_000), 1);
      assert.equal(await s.bans.recordFailure(ip, 60_000), 2);
      await s.bans.unban(ip);
      assert.equal(await s.bans.recordFailure(ip, 60_000), 1);
      await s.bans.recordFailure('203.0.113.9', 60_000);
      const t = Date.now();
      await s.bans.ban({ ip: '203.0.113.9', reason: 'x', until: t + 60_000, created_at: t });
      await s.bans.unban('all');
      assert.deepEqual(s.bans.list(), []);
      assert.equal(await s.bans.recordFailure(ip, 60_000), 1, 'unban all clears every count');
      assert.equal(await s.bans.recordFailure('203.0.113.9', 60_000), 1);
    });

    test('bans: replace sets the copy (bans loaded from the database)', async () => {
      const t = Date.now();
      s.bans.replace([{ ip: '192.0.2.7', reason: 'db', until: t + 60_000, created_at: t }]);
      assert.equal(s.bans.isBanned('192.0.2.7'), true);
      s.bans.replace([]);
      assert.equal(s.bans.isBanned('192.0.2.7'), false);
    });

    test('limits: points per duration, per key; refused with RateLimiterRes', async () => {
      const l = s.limits.create({ name: `t-${kind}`, points: 3, durationSec: 1 });
      for (let i = 0; i < 3; i++) await l.consume('k1');
      await assert.rejects(l.consume('k1'), (e) => e instanceof RateLimiterRes && e.remainingPoints === 0);
      await l.consume('k2');
      await sleep(1100);
      await l.consume('k1');
    });

    test('bus: a message reaches the subscribers of its channel, marked as our own', async () => {
      const got: Array<{ data: unknown; node: string; self: boolean }> = [];
      const off = s.bus.subscribe('chan', (data, from) => got.push({ data, ...from }));
      s.bus.subscribe('other', () => got.push({ data: 'wrong channel', node: '', self: false }));
      await s.bus.ready();
      await s.bus.publish('chan', { hello: 1 });
      await until(() => got.length === 1, 2000, 'the message');
      assert.deepEqual(got[0], { data: { hello: 1 }, node: 'n1', self: true });
      off();
      await s.bus.publish('chan', { hello: 2 });
      await sleep(100);
      assert.equal(got.length, 1, 'nothing after unsubscribe');
    });

    test('ttl store: set, get, delete, expiry; namespaces apart', async () => {
      const p = s.ttl('presence');
      await p.set('alice', 'away', 200);
      await p.set('bob', 'online', 10_000);
      assert.equal(await p.get('alice'), 'away');
      assert.equal(await s.ttl('other').get('alice'), undefined);
      await p.delete('bob');
      assert.equal(await p.get('bob'), undefined);
      await sleep(300);
      assert.equal(await p.get('alice'), undefined);
    });

    test('hash store: compare-and-set, per-field expiry, key listing', async () => {
      const h = s.hash('location');
      const t = Date.now();
      const empty = await h.read('alice');
      assert.equal(empty.version, 0);
      assert.equal(empty.fields.size, 0);
      const fields = new Map<string, HashEntry>([
        ['sip:alice@192.0.2.1', { value: '{"q":1}', expiresAt: t + 200 }],
        ['sip:alice@192.0.2.2', { value: 'b|with|bars', expiresAt: t + 10_000 }],
      ]);
      assert.equal(await h.write('alice', fields, 0), true);
      const r1 = await h.read('alice');
      assert.notEqual(r1.version, 0);
      assert.deepEqual([...r1.fields.keys()].sort(), ['sip:alice@192.0.2.1', 'sip:alice@192.0.2.2']);
      assert.equal(r1.fields.get('sip:alice@192.0.2.2')?.value, 'b|with|bars');
      assert.equal(await h.write('alice', new Map(), 0), false, 'stale version refused');
      assert.deepEqual(await h.keys(), ['alice']);
      await sleep(300);
      const r2 = await h.read('alice');
      assert.deepEqual([...r2.fields.keys()], ['sip:alice@192.0.2.2'], 'the short field expired alone');
      assert.equal(await h.write('alice', new Map(), r2.version), true);
      assert.equal((await h.read('alice')).fields.size, 0);
      assert.deepEqual(await h.keys(), []);
    });

    test('hash store: concurrent mutate calls all land', async () => {
      const h = s.hash('location');
      const t = Date.now();
      await Promise.all(
        Array.from({ length: 10 }, (_v, i) =>
          mutate(h, 'bob', (cur) => {
            const next = new Map(cur);
            next.set(`c${i}`, { value: String(i), expiresAt: t + 10_000 });
            return { fields: next, result: next.size };
          }),
        ),
      );
      assert.equal((await h.read('bob')).fields.size, 10);
      assert.equal(await mutate(h, 'bob', () => ({ fields: null, result: 'kept' })), 'kept');
      assert.equal((await h.read('bob')).fields.size, 10);
    });

    test('unavailable is null while the state answers', () => {
      assert.equal(s.unavailable(), null);
      assert.equal(s.describe, kind === 'redis' ? REDIS_URL : 'in-process');
    });
  });
}

storeTests('memory');
storeTests('redis');
