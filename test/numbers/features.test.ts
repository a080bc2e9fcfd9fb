import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, API_KEY, ADMIN_PASSWORD, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';

let t: TestServer;
const LOCAL = src('127.0.0.1');
const REMOTE = src('203.0.113.7');

const h = (e: string, p: Record<string, string>, s = LOCAL) => t.srv.gateway.handle(req(e, p, s));
const as = (user: string, e: string, p: Record<string, string> = {}) =>
  h(e, { authkey: API_KEY, authid: user, authpwd: `${user}pw`, ...p }, REMOTE);
const anon = (e: string, p: Record<string, string> = {}) => h(e, { authkey: API_KEY, ...p }, REMOTE);
const idOf = async (name: string) => (await t.srv.services.users.byUsername(name))!.id;

before(async () => {
  t = await startTestServer({ apilimitip: '0', apilimituser: '0', confroomfirst: '500' });
  for (const u of ['alice', 'bob', 'carl', 'eve'])
    assert.ok((await h('newuseri', { u_username: u, u_password: `${u}pw` })).ok);
  assert.ok((await h('newuseri', { u_username: 'rita', u_password: 'ritapw', u_type: 'reseller' })).ok);
  assert.ok(
    (
      await h('newuseri', {
        u_username: 'kid',
        u_password: 'kidpw',
        u_parentid: String(await idOf('rita')),
        u_did: '4477700001',
      })
    ).ok,
  );
});
after(() => t.stop());

test('cli: add (normalised), list, delete; unique across accounts; validation; anonymous denied', async () => {
  assert.match((await anon('cli', { anum: '3611111111' })).text, /authentication required/);
  const a = await as('alice', 'cli', { anum: '+36 30-123 4567' });
  assert.equal(a.ok, true, a.text);
  assert.equal(a.text, 'caller number 36301234567 added to alice');
  // alias phone1 and num; adding again is harmless
  assert.equal(
    (await as('alice', 'cli', { phone1: '36301234567' })).text,
    'caller number 36301234567 is already on alice',
  );
  assert.equal((await as('alice', 'cli', { num: '3670111222' })).ok, true);
  // another account cannot take it
  const b = await as('bob', 'cli', { anum: '+36301234567' });
  assert.equal(b.ok, false);
  assert.equal(b.text, 'number 36301234567 is already registered as a caller number of another account');
  assert.match((await as('bob', 'cli', { anum: '36-30-abc' })).text, /"36-30-abc" is not a phone number/);
  assert.match((await as('bob', 'cli', {})).text, /anum: the caller number/);
  const list = await as('alice', 'cli', { list: '1' });
  assert.equal(list.text, '2 caller number(s) of alice: 36301234567,3670111222');
  assert.deepEqual(
    list.rows!.map((r) => r.number),
    ['36301234567', '3670111222'],
  );
  assert.equal((await as('bob', 'cli', { list: '1' })).rows!.length, 0);
  // bob cannot delete alice's number
  assert.match((await as('bob', 'cli', { anum: '36301234567', del: '1' })).text, /not a caller number of this account/);
  assert.equal(
    (await as('alice', 'cli', { anum: '36301234567', del: '1' })).text,
    'caller number 36301234567 removed from alice',
  );
  // now bob may have it
  assert.equal((await as('bob', 'cli', { anum: '36301234567' })).ok, true);
  assert.equal(await t.srv.services.numbers.cliOwner('+36 30 123 4567'), await idOf('bob'));
  // an end user cannot act for another user; an admin can
  assert.match((await as('alice', 'cli', { username: 'bob', list: '1' })).text, /only act on your own account/);
  const adm = await h(
    'cli',
    { authkey: API_KEY, authid: 'admin', authpwd: ADMIN_PASSWORD, username: 'bob', list: '1' },
    REMOTE,
  );
  assert.equal(adm.text, '1 caller number(s) of bob: 36301234567');
});

test('cli: a tb_api override to level 6 denies end users', async () => {
  const db = t.srv.services.storage.db;
  await db
    .insertInto('tb_api')
    .values({ fname: 'cli', req_key: null, req_ip: null, req_user: 6, req_user_mode: null, customsql: null })
    .execute();
  assert.ok((await h('apireload', {})).ok);
  try {
    assert.match((await as('alice', 'cli', { list: '1' })).text, /not allowed for your user type/);
  } finally {
    await db.deleteFrom('tb_api').where('fname', '=', 'cli').execute();
    await h('apireload', {});
  }
  assert.equal((await as('alice', 'cli', { list: '1' })).ok, true);
});

test('addcallbacknumber: per user, no duplicates, at most 10, list, delete', async () => {
  assert.match((await anon('addcallbacknumber', { anum: '3611111111' })).text, /authentication required/);
  assert.equal(
    (await as('alice', 'addcallbacknumber', { anum: '+3611111111' })).text,
    'callback number 3611111111 added to alice',
  );
  assert.equal(
    (await as('alice', 'addcallbacknumber', { anum: '3611111111' })).text,
    'number 3611111111 is already one of your callback numbers',
  );
  // another user may use the same number for themselves
  assert.equal((await as('bob', 'addcallbacknumber', { num: '3611111111' })).ok, true);
  for (let i = 2; i <= 10; i++)
    assert.equal((await as('alice', 'addcallbacknumber', { anum: `36111111${String(i).padStart(2, '0')}` })).ok, true);
  const over = await as('alice', 'addcallbacknumber', { anum: '3699999999' });
  assert.equal(over.ok, false);
  assert.equal(over.text, 'at most 10 callback numbers per user: delete one first (del=1)');
  const list = await as('alice', 'addcallbacknumber', { list: '1' });
  assert.equal(list.rows!.length, 10);
  assert.equal(list.fields?.count, 10);
  assert.equal(
    (await as('alice', 'addcallbacknumber', { anum: '3611111105', del: '1' })).text,
    'callback number 3611111105 removed from alice',
  );
  assert.match(
    (await as('alice', 'addcallbacknumber', { anum: '3611111105', del: '1' })).text,
    /not one of this user's callback numbers/,
  );
  assert.equal((await as('alice', 'addcallbacknumber', { anum: '3699999999' })).ok, true);
  assert.match((await as('alice', 'addcallbacknumber', { anum: 'abc' })).text, /not a phone number/);
});

test('callbackaccessnumber: error when unset, the option when set', async () => {
  assert.match((await anon('callbackaccessnumber')).text, /authentication required/);
  const none = await as('alice', 'callbackaccessnumber');
  assert.equal(none.ok, false);
  assert.equal(none.text, 'no callback access number is configured (set callbackaccessnumber)');
  t.srv.services.config.persist({ callbackaccessnumber: '+3612345000' });
  try {
    const r = await as('alice', 'callbackaccessnumber');
    assert.equal(r.ok, true);
    assert.equal(r.text, '+3612345000');
  } finally {
    t.srv.services.config.persist({ callbackaccessnumber: '' });
  }
});

test('callforward: set, get, partial change, clear, validation, self, admin and reseller for others', async () => {
  assert.match((await anon('callforward')).text, /authentication required/);
  assert.equal((await as('alice', 'callforward')).text, 'call forward of alice: always=off, busy=off, noanswer=off');
  const set = await as('alice', 'callforward', { anum: '+36 20 555 1234', bnum: 'bob', cnum: '' });
  assert.equal(set.ok, true, set.text);
  assert.equal(set.text, 'call forward of alice set: always=36205551234, busy=bob, noanswer=off');
  assert.deepEqual(set.fields, { username: 'alice', always: '36205551234', busy: 'bob', noanswer: '' });
  // only the given rule changes (positional-style alias phone2 → bnum)
  assert.equal(
    (await as('alice', 'callforward', { cnum: 'carl' })).text,
    'call forward of alice set: always=36205551234, busy=bob, noanswer=carl',
  );
  assert.equal(
    (await as('alice', 'callforward', { anum: 'off' })).text,
    'call forward of alice set: always=off, busy=bob, noanswer=carl',
  );
  assert.equal((await as('alice', 'callforward')).text, 'call forward of alice: always=off, busy=bob, noanswer=carl');
  // validation: nothing is changed by a bad request
  assert.match(
    (await as('alice', 'callforward', { anum: '3611', bnum: 'nosuchuser' })).text,
    /bnum|busy: "nosuchuser" is neither a phone number .* nor an existing username/,
  );
  assert.match((await as('alice', 'callforward', { anum: 'alice' })).text, /may not forward to the user themselves/);
  await t.srv.services.storage.db
    .updateTable('tb_users')
    .set({ did: '3677700000' })
    .where('username', '=', 'alice')
    .execute();
  assert.match(
    (await as('alice', 'callforward', { cnum: '+3677700000' })).text,
    /may not forward to the user themselves/,
  );
  assert.equal((await as('alice', 'callforward')).text, 'call forward of alice: always=off, busy=bob, noanswer=carl');
  // rules for the SIP core
  const rules = await t.srv.services.numbers.forwardRules(await idOf('alice'));
  assert.deepEqual(rules, {
    always: null,
    busy: { kind: 'user', username: 'bob', userId: await idOf('bob') },
    noanswer: { kind: 'user', username: 'carl', userId: await idOf('carl') },
  });
  await as('alice', 'callforward', { anum: '0036 1 999' });
  assert.deepEqual((await t.srv.services.numbers.forwardRules(await idOf('alice'))).always, {
    kind: 'number',
    number: '00361999',
  });
  // others: end users no, admins yes, resellers only below them
  assert.match(
    (await as('bob', 'callforward', { username: 'alice', anum: '361234' })).text,
    /only act on your own account/,
  );
  const adm = await h('callforward', { username: 'alice', anum: '3612345' }, LOCAL);
  // a trusted source naming only username acts as that user
  assert.equal(adm.text, 'call forward of alice set: always=3612345, busy=bob, noanswer=carl');
  const admRemote = await h(
    'callforward',
    { authkey: API_KEY, authid: 'admin', authpwd: ADMIN_PASSWORD, username: 'bob', bnum: 'alice' },
    REMOTE,
  );
  assert.equal(admRemote.text, 'call forward of bob set: always=off, busy=alice, noanswer=off');
  assert.match(
    (await h('callforward', { authkey: API_KEY, authid: 'admin', authpwd: ADMIN_PASSWORD, username: 'ghost' }, REMOTE))
      .text,
    /user "ghost" not found/,
  );
  assert.match(
    (await as('rita', 'callforward', { username: 'alice' })).text,
    /only act on your own account or users below you/,
  );
  assert.equal(
    (await as('rita', 'callforward', { username: 'kid', anum: 'rita' })).text,
    'call forward of kid set: always=rita, busy=off, noanswer=off',
  );
  assert.match(
    (await as('rita', 'callforward', { username: 'kid', bnum: '4477700001' })).text,
    /may not forward to the user themselves/,
  );
});

test('getconfroom: first free from confroomfirst, stable per user, distinct under concurrency', async () => {
  assert.match((await anon('getconfroom')).text, /authentication required/);
  const a = await as('alice', 'getconfroom');
  assert.equal(a.ok, true, a.text);
  assert.equal(a.text, '500');
  assert.equal((await as('alice', 'getconfroom')).text, '500');
  assert.equal((await as('bob', 'getconfroom')).text, '501');
  // a gap is reused
  const db = t.srv.services.storage.db;
  await db.deleteFrom('tb_confrooms').where('room', '=', '500').execute();
  assert.equal((await as('carl', 'getconfroom')).text, '500');
  assert.equal((await as('bob', 'getconfroom')).text, '501');
  // parallel: distinct rooms, and parallel calls of one user agree
  const names = Array.from({ length: 12 }, (_, i) => `room${i}`);
  for (const n of names) await t.srv.services.users.create({ username: n, password: 'x' });
  const rs = await Promise.all([...names, ...names].map((n) => h('getconfroom', { authid: n })));
  assert.ok(
    rs.every((r) => r.ok),
    rs.map((r) => r.text).join(),
  );
  const per = new Map<string, Set<string>>();
  [...names, ...names].forEach((n, i) => per.set(n, (per.get(n) ?? new Set()).add(rs[i]!.text)));
  assert.ok([...per.values()].every((s) => s.size === 1));
  const rooms = [...per.values()].map((s) => [...s][0]!);
  assert.equal(new Set(rooms).size, 12);
  assert.deepEqual(
    rooms.map(Number).sort((x, y) => x - y),
    Array.from({ length: 12 }, (_, i) => 502 + i),
  );
  // eve gets the next one; kid (via reseller) too
  assert.equal((await as('rita', 'getconfroom', { username: 'kid' })).text, '514');
});
