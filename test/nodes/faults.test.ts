/**
 * Faults while a node runs, on the real PostgreSQL and Redis of the machine, each lost through a TCP proxy the test
 * cuts (the shared services stay up for everyone else):
 * - Redis lost: the call in progress goes on and is billed at its BYE; new REGISTERs and INVITEs are refused 503 with
 *   a log line saying why; when Redis is back calls work again; nothing is charged twice.
 * - PostgreSQL lost: the call in progress goes on, its CDR and charge are written once the database is back (retry
 *   queue); a new INVITE is refused 503 with a log line naming the database; nothing charged twice, no credit lost.
 * Missing services: skipped with the reason, a failure under CI=true.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { freshPgDatabase } from '../helpers/pg.js';
import { TcpProxy } from '../helpers/proxy.js';
import { REDIS_URL, redisMissing, testPrefix, dropPrefix, until } from '../state/redis.js';
import { importTariffsCsv } from '../../src/domain/rating/csv.js';
import { startNode, statusOf, captureLog, Phone, type Node } from './helpers.js';
import { audit } from './audit.js';

const missing = await redisMissing();
const pgdb = missing ? undefined : await freshPgDatabase();
const pgdb2 = pgdb && 'url' in pgdb ? await freshPgDatabase() : undefined;
const skip = missing ?? (pgdb && 'skip' in pgdb ? pgdb.skip : false);
const UNIT = 1_000_000;

/** Users, a tariff for 1555… at 0.60/min and a gateway phone answering every call. */
async function provision(n: Node, gw: Phone): Promise<void> {
  for (const u of ['carol', 'dave'])
    assert.ok(
      (await n.api('newuseri', { u_username: u, u_password: `${u}pw`, u_credit: '5.00', u_currency: 'USD' })).ok,
    );
  const csv = 'prefix,destination,price,connectfee,minduration,increment,currency\n1555,Test,0.60,0,1,1,USD\n';
  assert.deepEqual((await importTariffsCsv(n.srv.services.storage.db, csv)).errors, []);
  await n.srv.services.rating.load();
  const r = await n.api('addgateway', {
    name: 'gw',
    host: '127.0.0.1',
    port: String(gw.port),
    transport: 'udp',
    prefix: '1555',
  });
  assert.ok(r.ok, r.text);
}

const credit = async (n: Node, user: string) => {
  const u = await n.srv.services.users.byUsername(user);
  return (await n.srv.services.ledger.balance(u!.id))!.credit;
};

describe('faults while running', { skip, timeout: 90_000 }, () => {
  const db = pgdb as { url: string; drop: () => Promise<void> };
  after(async () => {
    for (const d of [pgdb, pgdb2]) if (d && 'drop' in d) await d.drop();
  });

  test('Redis lost: the call goes on and is billed, new REGISTER/INVITE refused 503 with the reason', async () => {
    const prefix = testPrefix();
    const proxy = new TcpProxy(new URL(REDIS_URL).hostname, Number(new URL(REDIS_URL).port || 6379));
    await proxy.start();
    const logs: Array<{ level: number; msg: string; [k: string]: unknown }> = [];
    const gw = await new Phone('gw', '').open();
    gw.answerCalls = true;
    const carol = await new Phone('carol', 'carolpw').open();
    const dave = await new Phone('dave', 'davepw').open();
    const n = await startNode({
      overrides: {
        dburl: db.url,
        redisurl: proxy.url(REDIS_URL),
        usesip: 'true',
        nodeid: 'fault-redis',
        defaultcountrycode: '1',
      },
      prefix,
      logger: captureLog(logs),
    });
    try {
      await provision(n, gw);
      const before = await credit(n, 'carol');
      const up = await carol.invite(n.sipPort, '15550001');
      assert.equal(up.status, 200, up.res);

      await proxy.cut();
      await until(() => n.srv.services.state.unavailable() !== null, 5000, 'the node sees Redis gone');
      const reg = await dave.request(n.sipPort, 'REGISTER', 'sip:127.0.0.1', { headers: ['Expires: 300'] });
      assert.equal(statusOf(reg), 503, reg);
      const refused = await dave.invite(n.sipPort, '15550002');
      assert.equal(refused.status, 503, refused.res);
      assert.ok(
        logs.some((l) => /refused/.test(l.msg) && /Redis/.test(String(l.why))),
        'a log line says the request was refused because Redis is unreachable',
      );

      // the call in progress ends normally and is billed (the database is there)
      await new Promise((r) => setTimeout(r, 1200));
      const bye = await carol.bye(up.dialog!);
      assert.equal(statusOf(bye), 200, bye);
      await until(async () => (await credit(n, 'carol')) < before, 5000, 'the call charged');

      await proxy.restore();
      await until(() => n.srv.services.state.unavailable() === null, 10_000, 'Redis back');
      const again = await dave.invite(n.sipPort, '15550003');
      assert.equal(again.status, 200, again.res);
      assert.equal(statusOf(await dave.bye(again.dialog!)), 200);
      await until(async () => (await audit(db.url)).liveRowsLeft === 0, 5000, 'every call closed');
      const a = await audit(db.url);
      assert.ok(a.ok, JSON.stringify(a));
      const carolCdrs = await n.srv.services.storage.db
        .selectFrom('tb_cdrs')
        .select(['cost', 'duration'])
        .where('userid', '=', (await n.srv.services.users.byUsername('carol'))!.id)
        .where('duration', '>', 0)
        .execute();
      assert.equal(carolCdrs.length, 1, 'one billed CDR for the call that was up');
      assert.equal(before - (await credit(n, 'carol')), Number(carolCdrs[0]!.cost));
    } finally {
      for (const p of [gw, carol, dave]) p.close();
      await n.close();
      await proxy.cut();
      await dropPrefix(prefix);
    }
  });

  test('PostgreSQL lost: the call goes on, its CDR is written once the database is back; new INVITE 503', async () => {
    const db2 = pgdb2 as { url: string };
    const u = new URL(db2.url);
    const proxy = new TcpProxy(u.hostname, Number(u.port || 5432));
    await proxy.start();
    const logs: Array<{ level: number; msg: string; [k: string]: unknown }> = [];
    const gw = await new Phone('gw', '').open();
    gw.answerCalls = true;
    const carol = await new Phone('carol', 'carolpw').open();
    const dave = await new Phone('dave', 'davepw').open();
    // a database of its own, through the proxy; no Redis (one node)
    const n = await startNode({
      overrides: { dburl: proxy.url(db2.url), usesip: 'true', nodeid: 'fault-pg', defaultcountrycode: '1' },
      prefix: testPrefix(),
      logger: captureLog(logs),
    });
    try {
      await provision(n, gw);
      const carolId = (await n.srv.services.users.byUsername('carol'))!.id;
      const before = await credit(n, 'carol');
      const cdrsBefore = (await audit(db2.url)).cdrs;
      // dave's account is in the user cache (his digest check needs no database while it is away)
      await n.srv.services.users.forAuth('dave');
      const up = await carol.invite(n.sipPort, '15550004');
      assert.equal(up.status, 200, up.res);

      await proxy.cut();
      const refused = await dave.invite(n.sipPort, '15550005');
      assert.equal(refused.status, 503, refused.res);
      assert.ok(
        logs.some((l) => /call refused/.test(l.msg) && /database/.test(String(l.why))),
        'a log line names the database as the cause',
      );
      // the call in progress is ended while the database is away: the BYE is answered, the CDR waits
      await new Promise((r) => setTimeout(r, 1200));
      const bye = await carol.bye(up.dialog!);
      assert.equal(statusOf(bye), 200, bye);
      await until(() => n.srv.services.liveCalls.retry.size === 1, 10_000, 'the CDR queued');
      assert.ok(logs.some((l) => /CDR of a finished call not written/.test(l.msg)));

      await proxy.restore();
      await until(() => n.srv.services.liveCalls.retry.size === 0, 15_000, 'the CDR written after the outage');
      const cdr = await n.srv.services.storage.db
        .selectFrom('tb_cdrs')
        .selectAll()
        .where('userid', '=', carolId)
        .where('callee', 'like', '%15550004')
        .execute();
      assert.equal(cdr.length, 1, 'one CDR for the call that was up');
      assert.ok(cdr[0]!.duration >= 1, 'billed for the time it was up');
      assert.ok(Number(cdr[0]!.cost) > 0);
      assert.equal(before - (await credit(n, 'carol')), Number(cdr[0]!.cost), 'charged exactly its cost, once');
      // a restart of the node after the outage bills nothing again
      assert.deepEqual(await n.srv.services.liveCalls.recover(), { closed: 0, charged: 0 });
      const a = await audit(db2.url);
      assert.ok(a.ok, JSON.stringify(a));
      assert.ok(a.cdrs >= cdrsBefore + 1);
      assert.ok(before > 4.9 * UNIT);
    } finally {
      for (const p of [gw, carol, dave]) p.close();
      await n.close();
      await proxy.cut();
    }
  });
});
