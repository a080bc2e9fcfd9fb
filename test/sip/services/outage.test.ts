/**
 * SIP on Redis that goes away (a proxy in front of Redis, cut and restored): an authenticated REGISTER is refused
 * with 503 and Retry-After while the shared replay state and location cannot be reached (never accepted unchecked,
 * no failure counted towards a ban); the binding made before stays visible; after the link is back REGISTER works.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startServer, type RunningServer } from '../../../src/server.js';
import { SipServer } from '../../../src/sip/server.js';
import { ADMIN_PASSWORD } from '../../helpers/server.js';
import { RedisProxy, redisMissing, testPrefix, dropPrefix, until } from '../../state/redis.js';
import { FakeStack, FakeTx, sipRequest, source, authorize, header } from './fake.js';

const missing = await redisMissing();
const D = '127.0.0.1';

describe('SIP while Redis is away', { skip: missing ?? false, timeout: 30_000 }, () => {
  const prefix = testPrefix();
  const proxy = new RedisProxy();
  let srv: RunningServer;
  let sip: SipServer;
  let dir: string;
  before(async () => {
    const url = await proxy.open();
    dir = mkdtempSync(join(tmpdir(), 'voxswitch-sipstate-'));
    process.env.VOXSWITCH_ADMIN_PASSWORD = ADMIN_PASSWORD;
    srv = await startServer({
      dataDir: dir,
      overrides: { mainaport: '0', apibindaddr: '127.0.0.1', usesip: 'false', redisurl: url, authfailban: '2' },
      announce: () => undefined,
      logger: pino({ level: 'silent' }),
      statePrefix: prefix,
    });
    await srv.services.users.create({ username: 'alice', password: 'alicepw' });
    sip = new SipServer(srv.services, new FakeStack());
    await sip.start();
  });
  after(async () => {
    await sip?.stop();
    await srv?.stop();
    await proxy.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    await dropPrefix(prefix);
  });

  async function register(cseq: number, port: number): Promise<FakeTx> {
    const h = {
      From: `<sip:alice@${D}>;tag=f1`,
      To: `<sip:alice@${D}>`,
      Contact: `<sip:alice@10.1.1.1:${port}>`,
      Expires: '600',
      'Call-ID': 'outage-reg',
    };
    const s = source('198.51.100.5');
    const first = new FakeTx(sipRequest('REGISTER', `sip:${D}`, { ...h, CSeq: `${cseq} REGISTER` }), s);
    await sip.handle(first.request, first, s);
    assert.equal(first.last.status, 401);
    const ch = header(first.last, 'WWW-Authenticate')!;
    const auth = authorize(ch, 'alice', 'alicepw', 'REGISTER', `sip:${D}`);
    const r = sipRequest('REGISTER', `sip:${D}`, { ...h, CSeq: `${cseq + 1} REGISTER`, Authorization: auth });
    const tx = new FakeTx(r, s);
    await sip.handle(r, tx, s);
    return tx;
  }

  test('REGISTER answered 503 with Retry-After while Redis is away, 200 again when it is back', async () => {
    assert.equal((await register(1, 5001)).last.status, 200);
    await proxy.cut();
    await until(() => srv.services.state.unavailable() !== null, 3000, 'the link seen down');
    for (let i = 0; i < 3; i++) {
      const tx = await register(10 + 2 * i, 5002);
      assert.equal(tx.last.status, 503);
      assert.equal(header(tx.last, 'Retry-After'), '5');
    }
    assert.equal(srv.services.bans.isBanned('198.51.100.5'), false, 'no failure counted');
    assert.equal(sip.location.all('alice').length, 1, 'the copy keeps what it had');
    await proxy.restore();
    await until(() => srv.services.state.unavailable() === null, 10_000, 'the link back');
    assert.equal((await register(20, 5003)).last.status, 200);
    assert.equal(sip.location.all('alice').length, 2);
  });
});
