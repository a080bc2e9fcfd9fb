import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, API_KEY, ADMIN_PASSWORD, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { NumberService } from '../../src/domain/numbers/service.js';

let t: TestServer;
const LOCAL = src('127.0.0.1');
const REMOTE = src('203.0.113.7');

const h = (e: string, p: Record<string, string>, s = LOCAL) => t.srv.gateway.handle(req(e, p, s));
/** As an authenticated remote user (the real authentication path). */
const as = (user: string, pw: string, e: string, p: Record<string, string> = {}) =>
  h(e, { authkey: API_KEY, authid: user, authpwd: pw, ...p }, REMOTE);
const pool = () => t.srv.services.storage.db.selectFrom('tb_numbers').selectAll().orderBy('number').execute();
const userRow = (name: string) =>
  t.srv.services.storage.db.selectFrom('tb_users').selectAll().where('username', '=', name).executeTakeFirstOrThrow();

before(async () => {
  t = await startTestServer({ apilimitip: '0', apilimituser: '0', numberlocktime: '60' });
  for (const u of ['alice', 'bob', 'carol'])
    assert.ok((await h('newuseri', { u_username: u, u_password: `${u}pw` })).ok);
  assert.ok((await h('newuseri', { u_username: 'dora', u_password: 'dorapw', u_did: '4400000001' })).ok);
});
after(() => t.stop());

test('parseNumberList: list, range with leading zeros, validation, limits', () => {
  assert.deepEqual(NumberService.parseNumberList('+36 1-2-3, 456;456', undefined, undefined), ['36', '123', '456']);
  assert.deepEqual(NumberService.parseNumberList('', '0098', '3'), ['0098', '0099', '0100']);
  assert.throws(() => NumberService.parseNumberList('12a', undefined, undefined), /"12a" is not a phone number/);
  assert.throws(() => NumberService.parseNumberList('', '100', undefined), /needs both from/);
  assert.throws(() => NumberService.parseNumberList('', '100', '10001'), /count: expected 1-10000/);
  assert.throws(() => NumberService.parseNumberList('', undefined, undefined), /no numbers given/);
  assert.throws(() => NumberService.parseNumberList('11', '100', '10000'), /too many numbers \(10001\)/);
  assert.equal(NumberService.parseNumberList('', '3610000000', '10000').length, 10000);
});

test('addnumbers: admin only; list and range; duplicates skipped; bad input adds nothing', async () => {
  const denied = await as('alice', 'alicepw', 'addnumbers', { numbers: '3611111111' });
  assert.equal(denied.ok, false);
  assert.match(denied.text, /not allowed for your user type/);
  const byAdmin = await as('admin', ADMIN_PASSWORD, 'addnumbers', { numbers: '+36-1000-0001' });
  assert.equal(byAdmin.ok, true, byAdmin.text);
  assert.equal(byAdmin.text, 'added 1 number(s) to the pool');
  const r = await h('addnumbers', { numbers: '3610000001,3610000002 3610000003' });
  assert.equal(r.text, 'added 2 number(s) to the pool (1 already in the pool)');
  assert.deepEqual(r.fields, { added: 2, skipped: 1 });
  const range = await h('addnumbers', { from: '3620000000', count: '5' });
  assert.equal(range.text, 'added 5 number(s) to the pool');
  const bad = await h('addnumbers', { numbers: '3630000000,notanumber' });
  assert.equal(bad.ok, false);
  assert.match(bad.text, /"notanumber" is not a phone number/);
  const rows = await pool();
  assert.equal(rows.length, 8);
  assert.ok(rows.every((x) => x.status === 'free' && x.userid === 0));
  assert.equal((await h('addnumbers', { from: '1', count: '10001' })).ok, false);
  assert.equal((await pool()).length, 8);
});

test('delnumber: admin only; only free numbers; unknown number', async () => {
  assert.match(
    (await as('bob', 'bobpw', 'delnumber', { number: '3620000004' })).text,
    /not allowed for your user type/,
  );
  const r = await as('admin', ADMIN_PASSWORD, 'delnumber', { number: '3620000004' });
  assert.equal(r.ok, true, r.text);
  assert.equal(r.text, 'number 3620000004 removed from the pool');
  assert.match((await h('delnumber', { number: '3620000004' })).text, /not in the pool/);
  assert.match((await h('delnumber', {})).text, /number: which number/);
});

test('getphonenumber: assigns, sets tb_users.did, idempotent, new=1; denied without a user', async () => {
  const anon = await h('getphonenumber', { authkey: API_KEY }, REMOTE);
  assert.equal(anon.ok, false);
  assert.match(anon.text, /authentication required/);
  const a = await as('alice', 'alicepw', 'getphonenumber');
  assert.equal(a.ok, true, a.text);
  assert.match(a.text, /^36\d{8}$/);
  assert.equal((await userRow('alice')).did, a.text);
  const row = (await pool()).find((x) => x.number === a.text)!;
  assert.equal(row.status, 'assigned');
  assert.equal(row.userid, (await userRow('alice')).id);
  // idempotent
  assert.equal((await as('alice', 'alicepw', 'getphonenumber')).text, a.text);
  // the DID now authenticates alice (users cache cleared)
  assert.equal((await h('balance', { authkey: API_KEY, authid: a.text, authpwd: 'alicepw' }, REMOTE)).ok, true);
  // new=1: a second number, the DID stays the first
  const second = await as('alice', 'alicepw', 'getphonenumber', { new: '1' });
  assert.equal(second.ok, true, second.text);
  assert.notEqual(second.text, a.text);
  assert.equal((await userRow('alice')).did, a.text);
  // a user who already has a DID keeps it
  const d = await as('dora', 'dorapw', 'getphonenumber');
  assert.equal(d.ok, true, d.text);
  assert.equal((await userRow('dora')).did, '4400000001');
  // an assigned number cannot be deleted
  assert.match((await h('delnumber', { number: a.text })).text, /is assigned .*only free numbers/);
});

test('lockphonenumber: reserves, is not handed out to others, expires, then assigned by getphonenumber', async () => {
  const svc = t.srv.services.numbers;
  let now = Date.now();
  svc.now = () => now;
  try {
    assert.match((await h('lockphonenumber', { authkey: API_KEY }, REMOTE)).text, /authentication required/);
    const free = (await pool()).filter((x) => x.status === 'free').map((x) => x.number);
    assert.equal(free.length, 4);
    // bob locks one specific free number
    const l = await as('bob', 'bobpw', 'lockphonenumber', { number: free[0]! });
    assert.equal(l.ok, true, l.text);
    assert.equal(l.text, free[0]);
    assert.equal(l.fields?.lockeduntil, new Date(now + 60_000).toISOString());
    let row = (await pool()).find((x) => x.number === free[0])!;
    assert.equal(row.status, 'locked');
    assert.equal(row.locked_until, now + 60_000);
    // carol cannot lock it, and getphonenumber never hands it to her
    assert.match(
      (await as('carol', 'carolpw', 'lockphonenumber', { number: free[0]! })).text,
      /reserved by another user/,
    );
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await as('carol', 'carolpw', 'getphonenumber', { new: '1' });
      assert.equal(c.ok, true, c.text);
      got.push(c.text);
    }
    assert.deepEqual([...got].sort(), free.slice(1).sort());
    const none = await as('carol', 'carolpw', 'getphonenumber', { new: '1' });
    assert.equal(none.ok, false);
    assert.equal(none.text, 'no free phone number in the pool');
    assert.equal((await as('carol', 'carolpw', 'lockphonenumber')).text, 'no free phone number in the pool');
    // locking again renews bob's reservation (same number)
    now += 30_000;
    assert.equal((await as('bob', 'bobpw', 'lockphonenumber')).text, free[0]);
    row = (await pool()).find((x) => x.number === free[0])!;
    assert.equal(row.locked_until, now + 60_000);
    // the lock expires: carol gets it now
    now += 60_001;
    const c3 = await as('carol', 'carolpw', 'getphonenumber', { new: '1' });
    assert.equal(c3.text, free[0]);
    // bob's lock is gone: he gets an error (pool empty), not carol's number
    assert.equal((await as('bob', 'bobpw', 'getphonenumber')).text, 'no free phone number in the pool');
    // a fresh lock is assigned by getphonenumber of the same user
    await h('addnumbers', { numbers: '3690000001,3690000002' });
    assert.equal((await as('bob', 'bobpw', 'lockphonenumber', { number: '3690000001' })).text, '3690000001');
    const l2 = await as('bob', 'bobpw', 'lockphonenumber', { number: '3690000002' });
    // one reservation per user: the first lock went back to the pool
    assert.equal((await pool()).find((x) => x.number === '3690000001')!.status, 'free');
    assert.equal(l2.text, '3690000002');
    const g = await as('bob', 'bobpw', 'getphonenumber');
    assert.equal(g.text, '3690000002');
    row = (await pool()).find((x) => x.number === '3690000002')!;
    assert.equal(row.status, 'assigned');
    assert.equal(row.locked_until, null);
    assert.match(
      (await as('bob', 'bobpw', 'lockphonenumber', { number: '3690000002' })).text,
      /already assigned to you/,
    );
    assert.match((await as('bob', 'bobpw', 'lockphonenumber', { number: '3699999999' })).text, /not in the pool/);
    assert.match((await as('bob', 'bobpw', 'lockphonenumber', { number: 'x1' })).text, /not a phone number/);
  } finally {
    svc.now = Date.now;
  }
});

test('concurrency: 20 parallel getphonenumber by different users, 10 free numbers', async () => {
  const db = t.srv.services.storage.db;
  await db.deleteFrom('tb_numbers').execute();
  await h('addnumbers', { from: '3650000000', count: '10' });
  const names = Array.from({ length: 20 }, (_, i) => `par${i}`);
  for (const n of names) await t.srv.services.users.create({ username: n, password: `${n}pw` });
  const results = await Promise.all(names.map((n) => h('getphonenumber', { authid: n })));
  const won = results.filter((r) => r.ok).map((r) => r.text);
  const lost = results.filter((r) => !r.ok);
  assert.equal(won.length, 10);
  assert.equal(new Set(won).size, 10);
  assert.equal(lost.length, 10);
  for (const r of lost) assert.equal(r.text, 'no free phone number in the pool');
  const rows = await pool();
  assert.ok(rows.every((x) => x.status === 'assigned'));
  assert.equal(new Set(rows.map((x) => x.userid)).size, 10);
});
