/** search, setfield/getfield and db through the whole API pipeline, with the hierarchy rules. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { caller, makeHierarchy, LOCAL } from './helpers.js';
import { escapeLike } from '../../src/domain/accounts/search.js';

let t: TestServer;
let ids: Record<string, number>;
let call: ReturnType<typeof caller>['call'];
let as: ReturnType<typeof caller>['as'];

before(async () => {
  t = await startTestServer({ apilimitip: '0', apilimituser: '0', authfailban: '0', customsqltimeout: '3000' });
  ({ call, as } = caller(t));
  ids = await makeHierarchy(t);
});
after(async () => {
  await t.srv.services.dbRunner.close();
  await t.stop();
});

const names = (rows: Array<Record<string, unknown>> | undefined) => (rows ?? []).map((r) => String(r.username)).sort();

/** Lowers the level of an API through tb_api (as an operator would), for the hierarchy checks. */
async function lowerLevel(fname: string, level: number) {
  await t.srv.services.storage.db
    .insertInto('tb_api')
    .values({ fname, req_key: 1, req_ip: 0, req_user: level, req_user_mode: 0, customsql: null })
    .execute();
  await t.srv.gateway.rules.load();
}
async function restoreLevels() {
  await t.srv.services.storage.db.deleteFrom('tb_api').execute();
  await t.srv.gateway.rules.load();
}

test('escapeLike', () => {
  assert.equal(escapeLike('a%b_c\\d'), 'a\\%b\\_c\\\\d');
});

test("search: admins see all, resellers their subtree, support their parent's subtree", async () => {
  assert.equal((await call('search', { txt: 'a' })).ok, false, 'anonymous remote caller refused');

  const admin = await call('search', { txt: 'E' }, LOCAL);
  assert.equal(admin.ok, true, admin.text);
  assert.deepEqual(admin.columns, ['id', 'username', 'name', 'email', 'phone', 'type', 'parentid']);
  // username, name or e-mail containing e/E, in the whole base
  assert.deepEqual(names(admin.rows), ['admin', 'bob', 'eve', 'rita', 'sue']);

  const rita = await as('rita', 'search', { txt: 'e' });
  assert.equal(rita.ok, true, rita.text);
  assert.deepEqual(names(rita.rows), ['bob', 'rita', 'sue'], "eve and admin are outside rita's subtree");
  // a reseller sees the whole chain below, e-mail and phone too
  assert.deepEqual(names((await as('rita', 'search', { txt: '11111' })).rows), ['carl']);
  assert.deepEqual(names((await as('rita', 'search', { email: 'EXAMPLE.COM' })).rows), ['bob', 'rita']);
  assert.deepEqual(names((await as('rita', 'search', { email: 'example.org' })).rows), []);
  // sub-reseller sam: only himself and carl
  assert.deepEqual(names((await as('sam', 'search', { txt: 'a' })).rows), ['carl', 'sam']);
  // support works for rita: rita's subtree, not eve
  const sue = await as('sue', 'search', { txt: 'r' });
  assert.deepEqual(names(sue.rows), ['carl', 'rita']);
  // admin-type user ada sees everyone
  assert.ok(names((await as('ada', 'search', { txt: 'eve' })).rows).includes('eve'));
});

test('search: LIKE wildcards are literal, limit is applied', async () => {
  assert.deepEqual(names((await call('search', { txt: '%' }, LOCAL)).rows), ['eve']);
  assert.deepEqual(names((await call('search', { name: '_' }, LOCAL)).rows), ['eve']);
  assert.deepEqual(names((await call('search', { txt: "' OR 1=1 --" }, LOCAL)).rows), []);
  const one = await call('search', { txt: 'a', limit: '1' }, LOCAL);
  assert.equal(one.rows!.length, 1);
  assert.equal((await call('search', { txt: 'a', limit: '1000' }, LOCAL)).ok, true, 'limit above 100 is capped');
  assert.match(
    (await call('search', { txt: 'a', limit: 'all' }, LOCAL)).text,
    /limit: expected a number from 1 to 100/,
  );
  assert.match((await call('search', {}, LOCAL)).text, /txt: give a search text/);
});

test('search: end users get public fields and exact matches only', async () => {
  const exact = await as('bob', 'search', { txt: 'CARL' });
  assert.equal(exact.ok, true, exact.text);
  assert.deepEqual(exact.columns, ['username', 'name']);
  assert.deepEqual(exact.rows, [{ username: 'carl', name: 'CARL' }]);
  assert.deepEqual((await as('bob', 'search', { txt: 'car' })).rows, [], 'no substring scanning');
  assert.deepEqual((await as('bob', 'search', { phone: '36 1111 1111' })).rows, [{ username: 'carl', name: 'CARL' }]);
  assert.deepEqual((await as('bob', 'search', { txt: '%' })).rows, []);
  // outside the hierarchy too (a directory look-up), but never e-mail or phone
  const e = await as('bob', 'search', { username: 'eve' });
  assert.deepEqual(e.rows, [{ username: 'eve', name: '100% real_name' }]);
});

test('setfield/getfield: admin use, defaults and auto-guessed filters', async () => {
  const set = await call('setfield', { fieldname: 'name', fieldvalue: 'Bobby B', rowid: String(ids.bob) }, LOCAL);
  assert.equal(set.ok, true, set.text);
  assert.equal(set.text, `tb_users.name of row ${ids.bob} set to Bobby B`);
  assert.equal((await t.srv.services.users.byId(ids.bob))!.name, 'Bobby B');
  // defaults: table tb_users, retfieldname id; filter guessed: username, id, phone
  assert.equal((await call('getfield', { filterfieldvalue: 'bob' }, LOCAL)).text, String(ids.bob));
  assert.equal(
    (await call('getfield', { retfieldname: 'username', filterfieldvalue: String(ids.carl) }, LOCAL)).text,
    'carl',
  );
  assert.equal(
    (await call('getfield', { retfieldname: 'username', filterfieldvalue: '+3622222222'.slice(1) }, LOCAL)).text,
    'bob',
  );
  assert.equal(
    (
      await call(
        'getfield',
        { retfieldname: 'name', filterfieldname: 'email', filterfieldvalue: 'bob@example.com' },
        LOCAL,
      )
    ).text,
    'Bobby B',
  );
  // positional-style full parameter set
  const g = await call(
    'getfield',
    {
      table: 'tb_users',
      retfieldname: 'credit',
      filterfieldtype: 'str',
      filterfieldname: 'username',
      filterfieldvalue: 'bob',
    },
    LOCAL,
  );
  assert.equal(g.text, '0.00');
  assert.match((await call('getfield', {}, LOCAL)).text, /filterfieldvalue: mandatory/);
  assert.match((await call('getfield', { filterfieldvalue: 'nobody' }, LOCAL)).text, /no matching row in tb_users/);

  // typed values
  assert.equal(
    (await call('setfield', { fieldname: 'enabled', fieldtype: 'int', fieldvalue: '0', rowid: String(ids.eve) }, LOCAL))
      .ok,
    true,
  );
  assert.equal((await t.srv.services.users.byId(ids.eve))!.enabled, false);
  assert.equal(
    (await call('setfield', { fieldname: 'enabled', fieldvalue: 'true', rowid: String(ids.eve) }, LOCAL)).ok,
    true,
  );
  assert.match(
    (
      await call(
        'setfield',
        { fieldname: 'enabled', fieldtype: 'int', fieldvalue: 'abc', rowid: String(ids.eve) },
        LOCAL,
      )
    ).text,
    /fieldtype int expects an integer/,
  );
  assert.match(
    (await call('setfield', { fieldname: 'email', fieldvalue: 'nope', rowid: String(ids.eve) }, LOCAL)).text,
    /not an e-mail/,
  );
  assert.match(
    (await call('setfield', { fieldname: 'name', fieldtype: 'blob', fieldvalue: 'x', rowid: String(ids.eve) }, LOCAL))
      .text,
    /fieldtype: expected int, str or money/,
  );
  assert.match(
    (await call('setfield', { fieldname: 'name', fieldvalue: 'x', rowid: 'abc' }, LOCAL)).text,
    /rowid: expected/,
  );
  assert.match(
    (await call('setfield', { fieldname: 'name', fieldvalue: 'x', rowid: '999999' }, LOCAL)).text,
    /no row 999999 in tb_users/,
  );
  assert.match(
    (await call('setfield', { fieldname: 'parentid', fieldvalue: String(ids.carl), rowid: String(ids.sam) }, LOCAL))
      .text,
    /parent must be an admin, owner or reseller/,
  );
  assert.match(
    (await call('setfield', { fieldname: 'parentid', fieldvalue: String(ids.sam), rowid: String(ids.rita) }, LOCAL))
      .text,
    /cannot be the account itself or one below it/,
  );
  assert.match(
    (await call('setfield', { fieldname: 'tariffid', fieldvalue: '4242', rowid: String(ids.bob) }, LOCAL)).text,
    /no such tariff plan/,
  );
  assert.equal(
    (await call('setfield', { fieldname: 'tariffid', fieldvalue: '', rowid: String(ids.bob) }, LOCAL)).ok,
    true,
  );
});

test('setfield/getfield: refused fields and tables, SQL injection finds and changes nothing', async () => {
  const before = await t.srv.services.storage.db.selectFrom('tb_users').selectAll().orderBy('id').execute();
  const refusals: Array<[Record<string, string>, RegExp]> = [
    [{ fieldname: 'password_enc', fieldvalue: 'x' }, /changepwd/],
    [{ fieldname: 'credit', fieldvalue: '100' }, /ledger: use addcredit/],
    [{ fieldname: 'pin', fieldvalue: '1234' }, /PIN/],
    [{ fieldname: 'username', fieldvalue: 'root' }, /not settable/],
    [{ fieldname: "name = 'x', credit", fieldvalue: '1' }, /not settable/],
    [{ fieldname: 'name; DROP TABLE tb_users', fieldvalue: '1' }, /not settable/],
    [{ table: 'tb_ledger', fieldname: 'amount', fieldvalue: '1' }, /table: "tb_ledger" is not allowed/],
    [{ table: 'tb_users; DELETE FROM tb_users', fieldname: 'name', fieldvalue: '1' }, /is not allowed/],
    [{ table: 'sqlite_master', fieldname: 'sql', fieldvalue: '1' }, /is not allowed/],
  ];
  for (const [p, re] of refusals) {
    const r = await call('setfield', { rowid: String(ids.bob), ...p }, LOCAL);
    assert.equal(r.ok, false, JSON.stringify(p));
    assert.match(r.text, re, JSON.stringify(p));
  }
  assert.match(
    (await call('getfield', { retfieldname: 'password_enc', filterfieldvalue: 'bob' }, LOCAL)).text,
    /^retfieldname: password_enc: passwords cannot be read or set here: use changepwd$/,
  );
  assert.match(
    (await call('getfield', { retfieldname: 'nosuch', filterfieldvalue: 'bob' }, LOCAL)).text,
    /retfieldname: "nosuch" is not readable in tb_users \(allowed: id, username/,
  );
  assert.match(
    (await call('getfield', { retfieldname: 'forgot_answer_enc', filterfieldvalue: 'bob' }, LOCAL)).text,
    /cannot be read/,
  );
  assert.match((await call('getfield', { retfieldname: 'pin', filterfieldvalue: 'bob' }, LOCAL)).text, /PIN/);
  assert.match(
    (await call('getfield', { filterfieldname: 'password_enc', filterfieldvalue: 'x' }, LOCAL)).text,
    /filterfieldname: password_enc: passwords cannot/,
  );
  assert.match(
    (await call('getfield', { filterfieldname: "username = 'bob' OR 1", filterfieldvalue: 'x' }, LOCAL)).text,
    /not a filter field/,
  );
  // injection in values: matched literally, finds nothing
  for (const v of ["' OR '1'='1", "bob' --", '1 OR 1=1', "x'; DROP TABLE tb_users; --"]) {
    const r = await call('getfield', { retfieldname: 'username', filterfieldvalue: v }, LOCAL);
    assert.equal(r.ok, false, v);
    assert.match(r.text, /no matching row/);
  }
  assert.match(
    (await call('getfield', { filterfieldname: 'id', filterfieldvalue: '1 OR 1=1' }, LOCAL)).text,
    /expected an integer/,
  );
  const after = await t.srv.services.storage.db.selectFrom('tb_users').selectAll().orderBy('id').execute();
  assert.deepEqual(after, before, 'nothing changed');
  // a value with SQL in it is stored literally
  const evil = "x'); DELETE FROM tb_users; --";
  assert.equal(
    (await call('setfield', { fieldname: 'address', fieldvalue: evil, rowid: String(ids.bob) }, LOCAL)).ok,
    true,
  );
  assert.equal((await t.srv.services.users.byId(ids.bob))!.address, evil);
  assert.equal(await t.srv.services.users.count(), before.length);
});

test('setfield/getfield: levels and the hierarchy', async () => {
  // default level 6: resellers and end users are refused by the gateway
  assert.match(
    (await as('rita', 'setfield', { fieldname: 'name', fieldvalue: 'x', rowid: String(ids.bob) })).text,
    /not allowed for your user type/,
  );
  assert.match((await as('bob', 'getfield', { filterfieldvalue: 'bob' })).text, /not allowed for your user type/);
  assert.equal((await as('ada', 'getfield', { filterfieldvalue: 'bob' })).text, String(ids.bob));

  await lowerLevel('setfield', 12);
  await lowerLevel('getfield', 8);
  try {
    // rita (reseller) manages her subtree only
    const ok1 = await as('rita', 'setfield', {
      fieldname: 'name',
      fieldvalue: 'Carl by Rita',
      rowid: String(ids.carl),
    });
    assert.equal(ok1.ok, true, ok1.text);
    assert.equal((await t.srv.services.users.byId(ids.carl))!.name, 'Carl by Rita');
    const out = await as('rita', 'setfield', { fieldname: 'name', fieldvalue: 'pwned', rowid: String(ids.eve) });
    assert.equal(out.ok, false);
    assert.match(out.text, /no row \d+ in tb_users that you may change/);
    assert.equal((await t.srv.services.users.byId(ids.eve))!.name, '100% real_name');
    assert.equal(
      (await as('rita', 'setfield', { fieldname: 'name', fieldvalue: 'pwned', rowid: String(ids.admin) })).ok,
      false,
    );
    assert.match(
      (await as('rita', 'setfield', { fieldname: 'enabled', fieldvalue: '1', rowid: String(ids.rita) })).text,
      /that you may change/,
      'not her own account',
    );
    assert.match(
      (await as('rita', 'setfield', { fieldname: 'type', fieldvalue: 'admin', rowid: String(ids.bob) })).text,
      /only the server admin/,
    );
    assert.match(
      (await as('rita', 'setfield', { fieldname: 'parentid', fieldvalue: String(ids.admin), rowid: String(ids.bob) }))
        .text,
      /parent must be|not in your part/,
    );
    assert.equal(
      (await as('rita', 'setfield', { fieldname: 'parentid', fieldvalue: String(ids.sam), rowid: String(ids.bob) })).ok,
      true,
      'move bob under her sub-reseller',
    );
    assert.equal((await t.srv.services.users.byId(ids.bob))!.parentid, ids.sam);
    assert.equal(
      (await as('rita', 'setfield', { table: 'tb_tariffs', fieldname: 'price', fieldvalue: '1', rowid: '1' })).ok,
      false,
    );
    // end users and support change nothing even at a lowered level
    assert.match(
      (await as('bob', 'setfield', { fieldname: 'name', fieldvalue: 'x', rowid: String(ids.bob) })).text,
      /only admins, owners and resellers/,
    );
    assert.match(
      (await as('sue', 'setfield', { fieldname: 'name', fieldvalue: 'x', rowid: String(ids.bob) })).text,
      /only admins, owners and resellers/,
    );
    // reads: rita sees carl, not eve (answered as not found)
    assert.equal(
      (await as('rita', 'getfield', { retfieldname: 'name', filterfieldvalue: 'carl' })).text,
      'Carl by Rita',
    );
    assert.match(
      (await as('rita', 'getfield', { retfieldname: 'name', filterfieldvalue: 'eve' })).text,
      /no matching row/,
    );
    assert.match(
      (await as('rita', 'getfield', { retfieldname: 'name', filterfieldvalue: String(ids.admin) })).text,
      /no matching row/,
    );
  } finally {
    await restoreLevels();
  }
});

test('setfield: tb_callforward and tb_numbers rows follow their owner', async () => {
  const db = t.srv.services.storage.db;
  await db
    .insertInto('tb_callforward')
    .values({ userid: ids.carl, always: '', busy: '', noanswer: '', updated_at: 0 })
    .execute();
  await db
    .insertInto('tb_callforward')
    .values({ userid: ids.eve, always: '', busy: '', noanswer: '', updated_at: 0 })
    .execute();
  await db
    .insertInto('tb_numbers')
    .values({ number: '3690000001', userid: ids.carl, status: 'assigned', locked_until: null, created_at: 0 })
    .execute();
  await lowerLevel('setfield', 8);
  try {
    assert.equal(
      (
        await as('rita', 'setfield', {
          table: 'tb_callforward',
          fieldname: 'busy',
          fieldvalue: '3612345',
          rowid: String(ids.carl),
        })
      ).ok,
      true,
    );
    assert.equal(
      (await db.selectFrom('tb_callforward').select('busy').where('userid', '=', ids.carl).executeTakeFirstOrThrow())
        .busy,
      '3612345',
    );
    assert.equal(
      (
        await as('rita', 'setfield', {
          table: 'tb_callforward',
          fieldname: 'busy',
          fieldvalue: '3612345',
          rowid: String(ids.eve),
        })
      ).ok,
      false,
    );
    assert.match(
      (
        await as('rita', 'setfield', {
          table: 'tb_callforward',
          fieldname: 'busy',
          fieldvalue: "1' OR '1",
          rowid: String(ids.carl),
        })
      ).text,
      /expected a number or SIP user/,
    );
    const num = await db
      .selectFrom('tb_numbers')
      .select('id')
      .where('number', '=', '3690000001')
      .executeTakeFirstOrThrow();
    assert.match(
      (
        await as('rita', 'setfield', {
          table: 'tb_numbers',
          fieldname: 'userid',
          fieldvalue: String(ids.eve),
          rowid: String(num.id),
        })
      ).text,
      /no such user in your part/,
    );
    assert.equal(
      (
        await as('rita', 'setfield', {
          table: 'tb_numbers',
          fieldname: 'userid',
          fieldvalue: String(ids.bob),
          rowid: String(num.id),
        })
      ).ok,
      true,
    );
    assert.equal(
      (await call('getfield', { table: 'tb_numbers', retfieldname: 'userid', filterfieldvalue: '3690000001' }, LOCAL))
        .text,
      String(ids.bob),
    );
  } finally {
    await restoreLevels();
  }
});

test('db: admin SELECT and UPDATE; PRAGMA/ATTACH/multiple statements refused; admins only', async () => {
  const sel = await call(
    'db',
    { txt: 'SELECT username, name FROM tb_users WHERE username = [SPARAM1]', sparam1: 'carl' },
    LOCAL,
  );
  assert.equal(sel.ok, true, sel.text);
  assert.equal(sel.text, '1 rows');
  assert.deepEqual(sel.rows, [{ username: 'carl', name: String((await t.srv.services.users.byId(ids.carl))!.name) }]);
  const star = await call('db', { txt: 'SELECT * FROM tb_users WHERE id = [USERID]' }, LOCAL);
  assert.equal(star.rows!.length, 1);
  assert.ok(
    !star.columns!.includes('password_enc') && !('password_enc' in star.rows![0]!),
    'secret columns are never answered',
  );

  const upd = await call('db', { txt: "UPDATE tb_users SET country = 'DE' WHERE username IN ('carl', 'eve')" }, LOCAL);
  assert.equal(upd.ok, true, upd.text);
  assert.equal(upd.text, '2 row(s) affected');
  assert.equal((await t.srv.services.users.byId(ids.eve))!.country, 'DE');
  const bad = await call('db', { txt: 'UPDATE tb_users SET nosuchcolumn = 1' }, LOCAL);
  assert.equal(bad.ok, false, 'a failing statement reports its failure (run synchronously)');
  assert.match(bad.text, /^db: .*nosuchcolumn/);

  for (const [txt, re] of [
    ['PRAGMA table_info(tb_users)', /single SELECT, INSERT, UPDATE or DELETE/],
    ["ATTACH DATABASE '/tmp/x.db' AS x", /single SELECT, INSERT, UPDATE or DELETE/],
    ['SELECT 1; DELETE FROM tb_users', /single statement/],
    ['DROP TABLE tb_users', /single SELECT/],
    ['SELECT password_enc FROM tb_users', /password_enc/],
    ['UPDATE tb_users SET credit = 1000000000', /addcredit/],
    ['', /txt: missing/],
  ] as const) {
    const r = await call('db', { txt }, LOCAL);
    assert.equal(r.ok, false, txt);
    assert.match(r.text, re, txt);
  }
  assert.equal(await t.srv.services.users.count(), Object.keys(ids).length);

  // levels: a reseller is refused by the gateway; lowered in tb_api, the handler still refuses non-admins
  assert.match((await as('rita', 'db', { txt: 'SELECT 1 AS x' })).text, /not allowed for your user type/);
  await lowerLevel('db', 12);
  try {
    const r = await as('rita', 'db', { txt: 'SELECT 1 AS x' });
    assert.equal(r.ok, false);
    assert.match(r.text, /db is for admins only/);
    assert.equal((await as('ada', 'db', { txt: 'SELECT 1 AS x' })).text, '1 rows');
  } finally {
    await restoreLevels();
  }
});
