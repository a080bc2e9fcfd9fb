import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, ADMIN_PASSWORD, API_KEY, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { importTariffsCsv } from '../../src/domain/rating/csv.js';

let t: TestServer;
const LOCAL = src('127.0.0.1');
const REMOTE = src('203.0.113.7');
const H = 'prefix,destination,price,connectfee,minduration,increment,currency\n';

const as = (user: string, pw: string) => ({ authkey: API_KEY, authid: user, authpwd: pw });
const handle = (e: string, p: Record<string, string>, s = REMOTE) => t.srv.gateway.handle(req(e, p, s));
const admin = as('admin', ADMIN_PASSWORD);
const bob = as('bob', 'bobpw');
const eve = as('eve', 'evepw');
const rita = as('rita', 'ritapw');

async function ledgerInvariant(username: string): Promise<number> {
  const db = t.srv.services.storage.db;
  const u = await db
    .selectFrom('tb_users')
    .select(['id', 'credit'])
    .where('username', '=', username)
    .executeTakeFirstOrThrow();
  const sum = await db
    .selectFrom('tb_ledger')
    .select((eb) => eb.fn.sum<number>('amount').as('s'))
    .where('userid', '=', u.id)
    .executeTakeFirstOrThrow();
  assert.equal(Number(sum.s ?? 0), Number(u.credit), `ledger sum == credit for ${username}`);
  assert.ok(Number(u.credit) >= 0);
  return Number(u.credit);
}

before(async () => {
  t = await startTestServer({ defaultcountrycode: '1', apilimituser: '0', apilimitip: '0' });
  const h = (e: string, p: Record<string, string>) => t.srv.gateway.handle(req(e, p, LOCAL));
  assert.ok((await h('newuseri', { u_username: 'rita', u_password: 'ritapw', u_type: 'reseller' })).ok);
  const ritaId = (await t.srv.services.users.byUsername('rita'))!.id;
  assert.ok(
    (
      await h('newuseri', {
        u_username: 'bob',
        u_password: 'bobpw',
        u_country: '36',
        u_credit: '1.00',
        u_parentid: String(ritaId),
      })
    ).ok,
  );
  assert.ok((await h('newuseri', { u_username: 'eve', u_password: 'evepw', u_credit: '0.10' })).ok);
  const db = t.srv.services.storage.db;
  assert.deepEqual(
    (await importTariffsCsv(db, H + '1,USA,0.01,0,60,60,USD\n36,Hungary,0.02,0,60,60,USD\n')).errors,
    [],
  );
  const r = await importTariffsCsv(db, H + '36,Hungary,0.012,0,60,60,USD\n3620,Hungary mobile,0.05,0.01,,30/6,USD\n', {
    plan: 'resellers',
  });
  assert.deepEqual(r.errors, []);
  await db.updateTable('tb_users').set({ tariffid: r.planId! }).where('id', '=', ritaId).execute();
  await t.srv.services.rating.load();
});
after(() => t.stop());

test('rating: the caller’s plan (inherited from the reseller), longest prefix, normalised number', async () => {
  const r = await handle('rating', { ...bob, bnum: '+36 1 234-5678' });
  assert.equal(r.ok, true, r.text);
  assert.equal(r.text, '0.0120 USD/min to Hungary (prefix 36)');
  assert.deepEqual(r.fields, {
    bnum: '3612345678',
    prefix: '36',
    destination: 'Hungary',
    price: '0.0120',
    connectfee: '0.00',
    minduration: 60,
    increment: 60,
    currency: 'USD',
  });
  const m = await handle('rating', { ...bob, bnum: '0 20 123 4567' }); // national: bob's country 36
  assert.equal(m.fields?.prefix, '3620');
  assert.equal(m.fields?.bnum, '36201234567');
  // eve has no plan and no reseller: the default plan; her national numbers use defaultcountrycode 1
  const e = await handle('rating', { ...eve, bnum: '0036201234567' });
  assert.equal(e.text, '0.0200 USD/min to Hungary (prefix 36)');
  assert.equal((await handle('rating', { ...eve, bnum: '0 212 555 1234' })).fields?.bnum, '12125551234');
});

test('rating: errors for no rate (404), a missing number (421), a bad number; denied without authentication', async () => {
  const none = await handle('rating', { ...bob, bnum: '+44 20 7946 0000' });
  assert.equal(none.ok, false);
  assert.equal(none.legacyStatus, 404);
  assert.match(none.text, /no rate for 442079460000 in tariff plan "resellers"/);
  const missing = await handle('rating', { ...bob });
  assert.equal(missing.legacyStatus, 421);
  assert.match(missing.text, /bnum/);
  assert.match((await handle('rating', { ...bob, bnum: 'hello' })).text, /not a phone number/);
  const anon = await handle('rating', { bnum: '3612345' }, src('203.0.113.99'));
  assert.equal(anon.ok, false);
  // a tb_api override raising the level denies end users
  const db = t.srv.services.storage.db;
  await db
    .insertInto('tb_api')
    .values({ fname: 'rating', req_key: 1, req_ip: 0, req_user: 8, req_user_mode: 0, customsql: null })
    .execute();
  await handle('apireload', {}, LOCAL);
  try {
    const denied = await handle('rating', { ...bob, bnum: '3612345' });
    assert.equal(denied.ok, false);
    assert.match(denied.text, /not allowed/);
    assert.equal((await handle('rating', { ...rita, bnum: '3612345' })).ok, true);
  } finally {
    await db.deleteFrom('tb_api').where('fname', '=', 'rating').execute();
    await handle('apireload', {}, LOCAL);
  }
});

test('callrating with bnum: credit, maxduration and rate; another user only when visible', async () => {
  const r = await handle('callrating', { ...bob, bnum: '3612345678' });
  assert.equal(r.ok, true, r.text);
  // 1.00 at 0.012/min in whole minutes: 83 min = 0.996 → 4980 s
  assert.deepEqual(
    {
      credit: r.fields?.credit,
      maxduration: r.fields?.maxduration,
      price: r.fields?.price,
      prefix: r.fields?.prefix,
      destination: r.fields?.destination,
      currency: r.fields?.currency,
    },
    { credit: '1.00', maxduration: 4980, price: '0.0120', prefix: '36', destination: 'Hungary', currency: 'USD' },
  );
  assert.equal(r.text, 'credit 1.00 USD, maxduration 4980 s, 0.0120 USD/min to Hungary (prefix 36)');
  // rita (reseller) may ask for bob (her subtree), not for eve; bob not for eve; admin for anyone
  assert.equal(
    (await handle('callrating', { ...rita, username: 'bob', bnum: '3612345678' })).fields?.maxduration,
    4980,
  );
  const denied = await handle('callrating', { ...rita, username: 'eve', bnum: '3612345678' });
  assert.equal(denied.ok, false);
  assert.equal(denied.legacyStatus, 404);
  assert.equal((await handle('callrating', { ...bob, username: 'eve', bnum: '1212' })).ok, false);
  const ev = await handle('callrating', { ...admin, username: 'eve', bnum: '0036201234567' });
  assert.equal(ev.fields?.maxduration, 300); // 0.10 at 0.02/min in whole minutes
  const none = await handle('callrating', { ...bob });
  assert.equal(none.legacyStatus, 421);
  const nocall = await handle('callrating', { ...bob, callid: 'no-such-call' });
  assert.equal(nocall.ok, false);
  assert.match(nocall.text, /call "no-such-call" not found/);
});

test('gencdr: admins only; each CDR charged once through recordCall; ledger sum == credit', async () => {
  const denied = await handle('gencdr', { ...bob, count: '1', username: 'bob', bnum: '3612345678' });
  assert.equal(denied.ok, false);
  assert.match(denied.text, /not allowed/);
  assert.equal((await handle('gencdr', { ...admin, count: '1' })).ok, false, 'username required');
  assert.match((await handle('gencdr', { ...admin, count: '10001', username: 'bob' })).text, /count/);

  const r = await handle('gencdr', { ...admin, count: '3', username: 'bob', bnum: '+3612345678', duration: '61' });
  assert.equal(r.ok, true, r.text);
  assert.equal(r.text, '3 CDRs generated for bob, total cost 0.072 USD'); // 3 × 2 min × 0.012
  assert.equal(r.fields?.cost, '0.072');
  assert.equal(await ledgerInvariant('bob'), 1_000_000 - 72_000);
  const db = t.srv.services.storage.db;
  const bobId = (await t.srv.services.users.byUsername('bob'))!.id;
  const cdrs = await db.selectFrom('tb_cdrs').selectAll().where('userid', '=', bobId).execute();
  assert.equal(cdrs.length, 3);
  assert.ok(
    cdrs.every(
      (c) => c.billed === 120 && Number(c.cost) === 24_000 && c.callee === '3612345678' && c.reason === 'normal',
    ),
  );

  // the same call recorded again charges nothing
  const c0 = cdrs[0]!;
  const again = await t.srv.services.cdrs.recordCall({
    callid: c0.callid,
    userId: bobId,
    caller: 'bob',
    callee: '3612345678',
    startAt: 0,
    connectAt: 0,
    endAt: 61_000,
    duration: 61,
  });
  assert.equal(again.created, false);
  assert.equal(again.charged, 0);
  assert.equal(await ledgerInvariant('bob'), 1_000_000 - 72_000);

  // callrating by callid answers the CDR's rating
  const cr = await handle('callrating', { ...bob, callid: c0.callid });
  assert.equal(cr.ok, true, cr.text);
  assert.equal(cr.fields?.cost, '0.024');
  assert.equal(cr.fields?.billed, 120);
  assert.equal(
    (await handle('callrating', { ...as('eve', 'evepw'), callid: c0.callid })).ok,
    false,
    "eve may not see bob's call",
  );

  // random durations and destinations from the plan
  const rnd = await handle('gencdr', { ...admin, count: '20', username: 'bob', mindur: '0', maxdur: '10' });
  assert.equal(rnd.ok, true, rnd.text);
  assert.equal(rnd.fields?.count, 20);
  await ledgerInvariant('bob');
});

test('gencdr never drives the balance below zero: the rest is marked "credit exhausted"', async () => {
  // eve: 0.10 credit, default plan 0.02/min in whole minutes; 4 calls of 3 min = 0.06 each
  const r = await handle('gencdr', { ...admin, count: '4', username: 'eve', bnum: '+3612345', duration: '180' });
  assert.equal(r.ok, true, r.text);
  assert.equal(r.fields?.cost, '0.10');
  assert.equal(r.fields?.exhausted, 3);
  assert.equal(await ledgerInvariant('eve'), 0);
  const eveId = (await t.srv.services.users.byUsername('eve'))!.id;
  const cdrs = await t.srv.services.storage.db
    .selectFrom('tb_cdrs')
    .selectAll()
    .where('userid', '=', eveId)
    .orderBy('id')
    .execute();
  assert.deepEqual(
    cdrs.map((c) => Number(c.cost)),
    [60_000, 40_000, 0, 0],
  );
  assert.match(cdrs[1]!.reason, /^credit exhausted \(rated 0.06\)$/);
  // and maxduration is now 0
  assert.equal((await handle('callrating', { ...eve, bnum: '3612345' })).fields?.maxduration, 0);
});
