/**
 * Redis missing at start and lost while running: a quick error naming the URL (password hidden); during an outage
 * (a proxy in front of Redis is cut) the state says why it is unavailable, shared operations fail fast, limits and
 * failure counts fall back to this process, bans keep answering; when Redis is back every node resynchronises.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { openState, type State } from '../../src/state/index.js';
import { BanList } from '../../src/domain/security/bans.js';
import { openStorage, type Storage } from '../../src/storage/db.js';
import { parseOptions, ConfigError } from '../../src/config/options.js';
import { startTestServer } from '../helpers/server.js';
import { REDIS_URL, RedisProxy, redisMissing, testPrefix, dropPrefix, until } from './redis.js';

const missing = await redisMissing();

test('Redis unreachable at start: an error naming the URL, quickly', { timeout: 10_000 }, async () => {
  const t0 = Date.now();
  await assert.rejects(openState({ redisUrl: 'redis://127.0.0.1:1' }), (e: Error) => {
    assert.match(e.message, /Redis at redis:\/\/127\.0\.0\.1:1 is not reachable/);
    assert.match(e.message, /redisurl/);
    return true;
  });
  assert.ok(Date.now() - t0 < 4000, `took ${Date.now() - t0} ms`);
});

test('the error hides the password of the URL', { timeout: 10_000 }, async () => {
  await assert.rejects(openState({ redisUrl: 'redis://user:s3cret-pw@127.0.0.1:1/2' }), (e: Error) => {
    assert.doesNotMatch(e.message, /s3cret-pw/);
    assert.match(e.message, /redis:\/\/user:\*\*\*@127\.0\.0\.1:1\/2/);
    return true;
  });
});

test('a server that accepts but never answers: the wait is bounded', { timeout: 10_000 }, async () => {
  const socks: Socket[] = [];
  const silent = createServer((sock) => void socks.push(sock)); // accepts connections, never says a word
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  const port = (silent.address() as { port: number }).port;
  const t0 = Date.now();
  try {
    await assert.rejects(
      openState({ redisUrl: `redis://127.0.0.1:${port}`, connectTimeoutMs: 500 }),
      new RegExp(`127\\.0\\.0\\.1:${port}`),
    );
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
  } finally {
    for (const sock of socks) sock.destroy();
    silent.close();
  }
});

test('option redisurl: empty or redis://…, nodeid free text', () => {
  assert.equal(parseOptions({}).redisurl, '');
  assert.equal(parseOptions({}).nodeid, '');
  assert.equal(parseOptions({ redisurl: 'redis://127.0.0.1:6379' }).redisurl, 'redis://127.0.0.1:6379');
  assert.throws(
    () => parseOptions({ redisurl: 'http://x' }),
    (e) => e instanceof ConfigError && /redisurl/.test(e.message),
  );
});

test('the server does not start when Redis is unreachable, and says why', { timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'voxswitch-state-'));
  try {
    await assert.rejects(startTestServer({ redisurl: 'redis://127.0.0.1:1' }, dir), /redis:\/\/127\.0\.0\.1:1/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('Redis lost while running', { skip: missing ?? false, timeout: 30_000 }, () => {
  const prefix = testPrefix();
  const proxy = new RedisProxy();
  const logs: Array<{ level: string; msg: string; obj: object }> = [];
  const log = {
    info: (obj: object, msg: string) => logs.push({ level: 'info', msg, obj }),
    warn: (obj: object, msg: string) => logs.push({ level: 'warn', msg, obj }),
    error: (obj: object, msg: string) => logs.push({ level: 'error', msg, obj }),
  };
  let a: State; // behind the proxy
  let b: State; // direct
  let storage: Storage;
  let dir: string;
  before(async () => {
    const url = await proxy.open();
    a = await openState({ redisUrl: url, prefix, nodeId: 'node-a', log, commandTimeoutMs: 500 });
    b = await openState({ redisUrl: REDIS_URL, prefix, nodeId: 'node-b' });
    dir = mkdtempSync(join(tmpdir(), 'voxswitch-state-'));
    storage = await openStorage('', dir);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await proxy.stop();
    await storage?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    await dropPrefix(prefix);
  });

  test('outage: unavailable says why, operations fail fast, fallbacks hold; back: resync', async () => {
    const policy = { threshold: 2, windowMs: 60_000, banMs: 60_000 };
    const la = new BanList(storage.db, policy, undefined, a.bans);
    const lb = new BanList(storage.db, policy, undefined, b.bans);
    await la.load();
    await lb.load();
    const limiter = a.limits.create({ name: 'outage', points: 2, durationSec: 10 });
    await la.ban('198.51.100.5', 'before', 60_000);
    await until(() => lb.isBanned('198.51.100.5'), 2000, 'the first ban on b');

    await proxy.cut();
    await until(() => a.unavailable() !== null, 3000, 'the loss to be noticed');
    assert.match(a.unavailable()!, /Redis at redis:\/\/127\.0\.0\.1:\d+ unreachable/);
    const lost = logs.find((l) => l.level === 'error');
    assert.ok(lost, 'a log line says the shared state is lost');
    assert.match(lost.msg, /new calls are refused/);

    const t0 = Date.now();
    await assert.rejects(a.once.claim('k', 1000));
    assert.ok(Date.now() - t0 < 1000, `claim failed after ${Date.now() - t0} ms`);
    // limits: the in-process insurance limiter with the same points
    await limiter.consume('x');
    await limiter.consume('x');
    await assert.rejects(limiter.consume('x'));
    // bans: still answered from the copy; failures counted here, the ban made here (and stored)
    assert.equal(la.isBanned('198.51.100.5'), true);
    assert.equal(await la.recordFailure('203.0.113.33', 'API'), false);
    assert.equal(await la.recordFailure('203.0.113.33', 'API'), true);
    assert.equal(la.isBanned('203.0.113.33'), true);
    // meanwhile node b bans an address: node a misses the message
    await lb.ban('203.0.113.44', 'during the outage', 60_000);
    assert.equal(la.isBanned('203.0.113.44'), false);

    await proxy.restore();
    await until(() => a.unavailable() === null, 8000, 'the link to come back');
    assert.ok(logs.some((l) => l.level === 'warn' && /restored/.test(l.msg)));
    // both nodes reload tb_bans: each now has the ban the other made while cut off
    await until(() => la.isBanned('203.0.113.44'), 5000, 'node a to learn the ban made by node b');
    await until(() => lb.isBanned('203.0.113.33'), 5000, 'node b to learn the ban made by node a');
    assert.equal(await a.once.claim('k', 1000), true);
  });
});
