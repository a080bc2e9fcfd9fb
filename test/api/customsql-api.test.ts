/** Custom SQL APIs defined in tb_api, called through the API with real authentication. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, API_KEY, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';

let t: TestServer;
const LOCAL = src('127.0.0.1');
const REMOTE = src('203.0.113.7');
const call = (e: string, p: Record<string, string>, s = REMOTE) => t.srv.gateway.handle(req(e, p, s));

before(async () => {
  t = await startTestServer({ apilimitip: '0', apilimituser: '0', customsqltimeout: '400' });
  for (const u of ['bob', 'eve'])
    assert.ok((await call('newuseri', { u_username: u, u_password: u + 'pw', u_name: u.toUpperCase() }, LOCAL)).ok);
  const db = t.srv.services.storage.db;
  const rows = [
    {
      fname: 'myname',
      req_key: 1,
      req_ip: 0,
      req_user: 12,
      req_user_mode: 0,
      customsql: 'SELECT username, name FROM tb_users WHERE id = [USERID]',
    },
    {
      fname: 'findname',
      req_key: 1,
      req_ip: 0,
      req_user: 12,
      req_user_mode: 0,
      customsql: 'SELECT username FROM tb_users WHERE name = [SPARAM1]',
    },
    {
      fname: 'setname',
      req_key: 1,
      req_ip: 0,
      req_user: 12,
      req_user_mode: 0,
      customsql: '*UPDATE tb_users SET name = [SPARAM1] WHERE username = [USERNAME]',
    },
    {
      fname: 'setnameasync',
      req_key: 1,
      req_ip: 0,
      req_user: 12,
      req_user_mode: 0,
      customsql: 'UPDATE tb_users SET address = [SPARAM1] WHERE id = [USERID]',
    },
    {
      fname: 'many',
      req_key: 0,
      req_ip: 0,
      req_user: 14,
      req_user_mode: 4,
      customsql: 'SELECT a.id AS x, b.id AS y FROM tb_ledger a, tb_ledger b',
    },
    {
      fname: 'slow',
      req_key: 0,
      req_ip: 0,
      req_user: 14,
      req_user_mode: 4,
      customsql: 'SELECT count(*) AS n FROM tb_ledger a, tb_ledger b, tb_ledger c, tb_ledger d',
    },
    {
      fname: 'evil',
      req_key: 0,
      req_ip: 0,
      req_user: 14,
      req_user_mode: 4,
      customsql: "ATTACH DATABASE '/tmp/x.db' AS x",
    },
    {
      fname: 'evil2',
      req_key: 0,
      req_ip: 0,
      req_user: 14,
      req_user_mode: 4,
      customsql: 'SELECT 1; DELETE FROM tb_users',
    },
  ];
  await db.insertInto('tb_api').values(rows).execute();
  // rows for the row-limit and time-limit queries
  const bob = (await t.srv.services.users.byUsername('bob'))!;
  await db
    .insertInto('tb_ledger')
    .values(
      Array.from({ length: 400 }, (_, i) => ({
        userid: bob.id,
        amount: 1,
        balance_after: i + 1,
        currency: 'USD',
        reason: 'fill',
        ref: '',
        actor: 0,
        created_at: 0,
      })),
    )
    .execute();
  assert.match((await call('apireload', {}, LOCAL)).text, /8 entries/);
});
after(() => t.stop());

const BOB = { authkey: API_KEY, authid: 'bob', authpwd: 'bobpw' };

test("SELECT with [USERID] answers the caller's row", async () => {
  const r = await call('myname', BOB);
  assert.equal(r.ok, true, r.text);
  assert.deepEqual(r.rows, [{ username: 'bob', name: 'BOB' }]);
  assert.equal((await call('myname', { ...BOB, authpwd: 'x' })).ok, false);
});

test('[SPARAMn] is bound, never spliced: an injection attempt finds nothing', async () => {
  assert.deepEqual((await call('findname', { ...BOB, sparam1: 'EVE' })).rows, [{ username: 'eve' }]);
  const inj = await call('findname', { ...BOB, sparam1: "x' OR '1'='1" });
  assert.equal(inj.ok, true);
  assert.deepEqual(inj.rows, []);
  assert.match((await call('findname', BOB)).text, /missing parameter sparam1/);
});

test('* runs synchronously and reports; without * it is queued', async () => {
  const r = await call('setname', { ...BOB, sparam1: "Bob'); DROP TABLE tb_users; --" });
  assert.equal(r.ok, true, r.text);
  assert.match(r.text, /1 row/);
  assert.equal((await t.srv.services.users.byUsername('bob'))!.name, "Bob'); DROP TABLE tb_users; --");
  const q = await call('setnameasync', { ...BOB, sparam1: 'Main St 1' });
  assert.equal(q.text, 'query queued');
  for (let i = 0; i < 50 && (await t.srv.services.users.byUsername('bob'))!.address !== 'Main St 1'; i++)
    await new Promise((res) => setTimeout(res, 50));
  assert.equal((await t.srv.services.users.byUsername('bob'))!.address, 'Main St 1');
});

test('SELECT answers at most 100 rows; text, json and xml render them', async () => {
  const r = await call('many', {});
  assert.equal(r.rows!.length, 100);
  assert.match(r.text, /limited to 100/);
});

test('only plain single statements; runaway queries are stopped', async () => {
  assert.match((await call('evil', {})).text, /ATTACH|only|not allowed/i);
  assert.match((await call('evil2', {})).text, /statement/i);
  const t0 = Date.now();
  const slow = await call('slow', {});
  assert.equal(slow.ok, false);
  assert.match(slow.text, /time limit of 400 ms/);
  assert.ok(Date.now() - t0 < 3000);
  assert.deepEqual((await call('myname', BOB)).rows?.length, 1, 'next query works');
});
