/** The account commands on PostgreSQL: recursive subtree CTE, LIKE escaping, lower(), db through the pg runner. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, API_KEY } from '../helpers/server.js';
import { freshPgDatabase } from '../helpers/pg.js';
import { src } from '../helpers/source.js';
import { caller, makeHierarchy, LOCAL } from './helpers.js';

test('account commands on PostgreSQL', async (t) => {
  const pgdb = await freshPgDatabase();
  if ('skip' in pgdb) {
    t.skip(pgdb.skip);
    return;
  }
  const srv = await startTestServer({
    dburl: pgdb.url,
    apilimitip: '0',
    apilimituser: '0',
    authfailban: '0',
    publicsignup: 'true',
  });
  try {
    const { call, as } = caller(srv);
    const ids = await makeHierarchy(srv);
    const names = (rows: Array<Record<string, unknown>> | undefined) =>
      (rows ?? []).map((r) => String(r.username)).sort();

    assert.deepEqual(names((await call('search', { txt: 'E' }, LOCAL)).rows), ['admin', 'bob', 'eve', 'rita', 'sue']);
    assert.deepEqual(names((await as('rita', 'search', { txt: 'e' })).rows), ['bob', 'rita', 'sue']);
    assert.deepEqual(names((await as('sue', 'search', { txt: 'r' })).rows), ['carl', 'rita']);
    assert.deepEqual(names((await call('search', { txt: '%' }, LOCAL)).rows), ['eve']);
    assert.deepEqual(names((await call('search', { name: '_' }, LOCAL)).rows), ['eve']);
    assert.deepEqual((await as('bob', 'search', { txt: 'Carl' })).rows, [{ username: 'carl', name: 'CARL' }]);

    assert.equal(
      (await call('setfield', { fieldname: 'name', fieldvalue: "O'Brien", rowid: String(ids.bob) }, LOCAL)).ok,
      true,
    );
    assert.equal((await call('getfield', { retfieldname: 'name', filterfieldvalue: 'bob' }, LOCAL)).text, "O'Brien");
    assert.equal(
      (await call('getfield', { retfieldname: 'username', filterfieldvalue: '3611111111' }, LOCAL)).text,
      'carl',
    );
    assert.match((await call('getfield', { filterfieldvalue: "' OR '1'='1" }, LOCAL)).text, /no matching row/);

    const sel = await call(
      'db',
      { txt: 'SELECT username FROM tb_users WHERE parentid = [SPARAM1] ORDER BY username', sparam1: String(ids.rita) },
      LOCAL,
    );
    assert.equal(sel.ok, true, sel.text);
    assert.deepEqual(names(sel.rows), ['bob', 'sam', 'sue']);
    const upd = await call('db', { txt: "UPDATE tb_users SET country = 'AT' WHERE username = 'eve'" }, LOCAL);
    assert.equal(upd.text, '1 row(s) affected');
    assert.match((await call('db', { txt: 'SELECT 1 AS x; SELECT 2' }, LOCAL)).text, /single statement/);
    assert.match((await call('db', { txt: 'SELECT U&"password\\005fenc" FROM tb_users' }, LOCAL)).text, /U&/);

    const r = await call(
      'newuseru',
      {
        authkey: API_KEY,
        u_username: 'fay',
        u_password: 'Fay-secret-77',
        u_email: 'Fay@Example.com',
        u_forgotquestion: 'Pet?',
        u_forgotanswer: 'Rex',
      },
      src('198.18.5.1'),
    );
    assert.equal(r.ok, true, r.text);
    assert.equal((await call('forgotpasswordquestion', { authkey: API_KEY, email: 'fay@EXAMPLE.com' })).text, 'Pet?');
    const good = await call('forgotpasswordanswer', {
      authkey: API_KEY,
      email: 'fay@example.com',
      forgotpasswordanswer: ' rex ',
    });
    assert.equal(good.ok, true, good.text);
    assert.equal(good.fields!.username, 'fay');
  } finally {
    await srv.srv.services.dbRunner.close();
    await srv.stop();
    await pgdb.drop();
  }
});
