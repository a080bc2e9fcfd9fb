/**
 * Two "nodes" (two state instances) on one Redis: claims, nonce counts, failure counts and limits are shared; a ban
 * made on one node reaches the other's synchronous look-up through pub/sub; BanList on top of it, with one database.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { openState, type State } from '../../src/state/index.js';
import { BanList } from '../../src/domain/security/bans.js';
import { openStorage, type Storage } from '../../src/storage/db.js';
import { REDIS_URL, redisMissing, testPrefix, dropPrefix, sleep, until } from './redis.js';

const missing = await redisMissing();

describe('two nodes on one Redis', { skip: missing ?? false, timeout: 30_000 }, () => {
  const prefix = testPrefix();
  let a: State;
  let b: State;
  let storage: Storage;
  let dir: string;
  before(async () => {
    a = await openState({ redisUrl: REDIS_URL, prefix, nodeId: 'node-a' });
    b = await openState({ redisUrl: REDIS_URL, prefix, nodeId: 'node-b' });
    dir = mkdtempSync(join(tmpdir(), 'voxswitch-state-'));
    storage = await openStorage('', dir);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await storage?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    await dropPrefix(prefix);
  });

  test('a token claimed on one node is taken on the other; of many racing claims exactly one wins', async () => {
    assert.equal(await a.once.claim('salt:1', 10_000), true);
    assert.equal(await b.once.claim('salt:1', 10_000), false);
    const results = await Promise.all(
      Array.from({ length: 40 }, (_v, i) => (i % 2 ? a : b).once.claim('salt:race', 10_000)),
    );
    assert.equal(results.filter(Boolean).length, 1);
  });

  test('a nonce count accepted on one node is a replay on the other', async () => {
    assert.equal(await a.nonces.accept('n1', 1, 10_000), 'ok');
    assert.equal(await b.nonces.accept('n1', 1, 10_000), 'replay');
    assert.equal(await b.nonces.accept('n1', 2, 10_000), 'ok');
    assert.equal(await a.nonces.accept('n1', 2, 10_000), 'replay');
    const racing = await Promise.all(
      Array.from({ length: 20 }, (_v, i) => (i % 2 ? a : b).nonces.accept('n1', 7, 1e4)),
    );
    assert.equal(racing.filter((r) => r === 'ok').length, 1);
  });

  test('a ban on one node turns the other node’s synchronous isBanned true within milliseconds', async () => {
    const t0 = Date.now();
    await a.bans.ban({ ip: '198.51.100.77', reason: 'test', until: t0 + 60_000, created_at: t0 });
    await until(() => b.bans.isBanned('198.51.100.77'), 2000, 'the ban on node b');
    const ms = Date.now() - t0;
    assert.ok(ms < 500, `seen after ${ms} ms`);
    assert.equal(b.bans.get('198.51.100.77')?.reason, 'test');
    await b.bans.unban('198.51.100.77');
    await until(() => !a.bans.isBanned('198.51.100.77'), 2000, 'the unban on node a');
  });

  test('failures on different nodes add up', async () => {
    assert.equal(await a.bans.recordFailure('203.0.113.50', 60_000), 1);
    assert.equal(await b.bans.recordFailure('203.0.113.50', 60_000), 2);
    assert.equal(await a.bans.recordFailure('203.0.113.50', 60_000), 3);
    await b.bans.clearFailures('203.0.113.50');
    assert.equal(await a.bans.recordFailure('203.0.113.50', 60_000), 1);
  });

  test('limits add up across nodes', async () => {
    const la = a.limits.create({ name: 'api-ip', points: 4, durationSec: 5 });
    const lb = b.limits.create({ name: 'api-ip', points: 4, durationSec: 5 });
    await la.consume('192.0.2.1');
    await la.consume('192.0.2.1');
    await lb.consume('192.0.2.1');
    await lb.consume('192.0.2.1');
    await assert.rejects(la.consume('192.0.2.1'), RateLimiterRes);
    await assert.rejects(lb.consume('192.0.2.1'), RateLimiterRes);
    await la.consume('192.0.2.2');
  });

  test('bus: the other node receives with the sender’s node id; own messages are marked', async () => {
    const atB: Array<{ d: unknown; node: string; self: boolean }> = [];
    const atA: Array<{ d: unknown; node: string; self: boolean }> = [];
    b.bus.subscribe('hello', (d, f) => atB.push({ d, ...f }));
    a.bus.subscribe('hello', (d, f) => atA.push({ d, ...f }));
    await Promise.all([a.bus.ready(), b.bus.ready()]);
    await a.bus.publish('hello', [1, 'x']);
    await until(() => atB.length === 1 && atA.length === 1, 2000, 'both deliveries');
    assert.deepEqual(atB[0], { d: [1, 'x'], node: 'node-a', self: false });
    assert.deepEqual(atA[0], { d: [1, 'x'], node: 'node-a', self: true });
  });

  test('hash store: a write on one node is read on the other; a stale version loses', async () => {
    const ha = a.hash('location');
    const hb = b.hash('location');
    const exp = Date.now() + 10_000;
    const snap = await ha.read('carol');
    assert.equal(await ha.write('carol', new Map([['c1', { value: 'x', expiresAt: exp }]]), snap.version), true);
    const seen = await hb.read('carol');
    assert.equal(seen.fields.get('c1')?.value, 'x');
    assert.equal(await hb.write('carol', new Map(), snap.version), false);
    assert.equal(await hb.write('carol', new Map(), seen.version), true);
    assert.equal((await ha.read('carol')).fields.size, 0);
  });

  test('BanList: failures on two nodes ban the address on both; remove on one lifts it on both', async () => {
    const policy = { threshold: 3, windowMs: 60_000, banMs: 60_000 };
    const la = new BanList(storage.db, policy, undefined, a.bans);
    const lb = new BanList(storage.db, policy, undefined, b.bans);
    await la.load();
    await lb.load();
    assert.equal(await la.recordFailure('203.0.113.80', 'SIP'), false);
    assert.equal(await lb.recordFailure('::ffff:203.0.113.80', 'SIP'), false);
    assert.equal(await la.recordFailure('203.0.113.80', 'SIP'), true, 'the third failure, counted over both nodes');
    assert.equal(la.isBanned('203.0.113.80'), true);
    await until(() => lb.isBanned('203.0.113.80'), 2000, 'the ban on node b');
    assert.equal(lb.list()[0]?.reason, '3 SIP failures');
    const row = await storage.db.selectFrom('tb_bans').selectAll().where('ip', '=', '203.0.113.80').executeTakeFirst();
    assert.ok(row, 'stored in tb_bans');
    assert.equal(await lb.remove('203.0.113.80'), 1);
    await until(() => !la.isBanned('203.0.113.80'), 2000, 'the unban on node a');
    assert.equal(await la.recordFailure('203.0.113.80', 'SIP'), false, 'failure count started over');
    await la.remove('all');
    await sleep(50);
  });
});
