/**
 * The API's used salts and usage limits on the shared state: SaltStore over a single-use store (shared by two
 * instances: a salt used through one is refused through the other), and a server on Redis whose link is cut: a
 * salted request is refused with an ERROR saying why (never accepted unchecked), usage limits go on per node.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { SaltStore } from '../../src/api/auth/salts.js';
import { MemoryOnce } from '../../src/state/once.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { ADMIN_PASSWORD, API_KEY, SALT, authMd5, freshSalt } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { RedisProxy, redisMissing, testPrefix, dropPrefix, until } from './redis.js';

test('SaltStore over a shared single-use store: one use across instances, a failing store rejects', async () => {
  const once = new MemoryOnce();
  const a = new SaltStore(60_000, undefined, once);
  const b = new SaltStore(60_000, undefined, once);
  assert.equal(await a.use('bob', 's1'), true);
  assert.equal(await b.use('bob', 's1'), false);
  assert.equal(await b.use('rita', 's1'), true, 'salts are per authid');
  assert.equal(await b.use('bob', 'x'.repeat(5000)), true, 'a long salt is a fixed-length key');
  const broken = new SaltStore(60_000, undefined, { claim: () => Promise.reject(new Error('Redis down')) });
  await assert.rejects(broken.use('bob', 's2'), /Redis down/);
  // in one process: the map, as before
  let now = 1000;
  const local = new SaltStore(5000, () => now);
  assert.equal(await local.use('bob', 's'), true);
  assert.equal(await local.use('bob', 's'), false);
  now += 5000;
  assert.equal(await local.use('bob', 's'), true);
});

const missing = await redisMissing();

describe('API on Redis that goes away', { skip: missing ?? false, timeout: 30_000 }, () => {
  const prefix = testPrefix();
  const proxy = new RedisProxy();
  let srv: RunningServer;
  let dir: string;
  const LOCAL = src('127.0.0.1');
  const handle = (e: string, p: Record<string, string>, s = src('203.0.113.40')) => srv.gateway.handle(req(e, p, s));
  before(async () => {
    const url = await proxy.open();
    dir = mkdtempSync(join(tmpdir(), 'voxswitch-apistate-'));
    process.env.VOXSWITCH_ADMIN_PASSWORD = ADMIN_PASSWORD;
    srv = await startServer({
      dataDir: dir,
      overrides: {
        mainaport: '0',
        apibindaddr: '127.0.0.1',
        usesip: 'false',
        apiv2key: API_KEY,
        apiv2md5salt: SALT,
        redisurl: url,
        authfailban: '0',
      },
      announce: () => undefined,
      logger: pino({ level: 'silent' }),
      statePrefix: prefix,
    });
    assert.ok((await handle('newuseri', { u_username: 'bob', u_password: 'bobpw' }, LOCAL)).ok);
  });
  after(async () => {
    await srv?.stop();
    await proxy.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    await dropPrefix(prefix);
  });

  test('a salt that cannot be checked is refused with a clear ERROR; limits hold per node meanwhile', async () => {
    const md5 = (salt: string) => ({
      authkey: API_KEY,
      authid: 'bob',
      authmd5: authMd5('bob', 'bobpw', salt),
      authsalt: salt,
    });
    const s0 = freshSalt();
    assert.equal((await handle('balance', md5(s0))).ok, true);
    assert.match((await handle('balance', md5(s0))).text, /authsalt already used/);
    await proxy.cut();
    await until(() => srv.services.state.unavailable() !== null, 3000, 'the link seen down');
    const r = await handle('balance', md5(freshSalt()));
    assert.equal(r.ok, false);
    assert.match(r.text, /authsalt cannot be checked for replay now \(.*\); try again later/);
    // a password login needs no salt: it goes on (the usage limit is the insurance limiter's)
    assert.equal((await handle('balance', { authkey: API_KEY, authid: 'bob', authpwd: 'bobpw' })).ok, true);
    await proxy.restore();
    await until(() => srv.services.state.unavailable() === null, 10_000, 'the link back');
    assert.equal((await handle('balance', md5(freshSalt()))).ok, true);
  });
});
