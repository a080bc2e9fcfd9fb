/**
 * The admin API cannot break the ledger or reach secrets, whatever the SQL text: `db` and custom SQL templates
 * (stored in tb_api) are refused by what the database executes (SQLite: the compiled program and temporary
 * triggers; PostgreSQL: a restricted role), so splitting forbidden words with || or quoting them changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { freshPgDatabase } from '../helpers/pg.js';
import { caller, makeHierarchy, LOCAL } from '../users/helpers.js';
import { CustomSqlRunner } from '../../src/api/customsql/runner.js';

async function scenario(t: TestServer, dialect: 'sqlite' | 'pg'): Promise<void> {
  const { call } = caller(t);
  const ids = await makeHierarchy(t);
  const s = t.srv.services;
  const db = (txt: string, extra: Record<string, string> = {}) => call('db', { txt, ...extra }, LOCAL);
  await s.ledger.post({ userId: ids.bob!, amount: 5_000_000, reason: 'test' });
  const total = async () =>
    (await s.storage.db.selectFrom('tb_users').select('credit').execute()).reduce((a, r) => a + Number(r.credit), 0);
  const before = { total: await total(), bob: (await s.ledger.balance(ids.bob!))!.credit };
  const pwOf = async (id: number) =>
    (await s.storage.db.selectFrom('tb_users').select('password_enc').where('id', '=', id).executeTakeFirst())!
      .password_enc;
  const adaPw = await pwOf(ids.ada!);
  const nameOf = async (id: number) =>
    (await s.storage.db.selectFrom('tb_users').select('name').where('id', '=', id).executeTakeFirst())!.name;
  const eveName = await nameOf(ids.eve!);

  // a custom API stored through db, forbidden words split with ||: refused (tb_api is out of reach)
  const splitCredit =
    "INSERT INTO tb_api (fname, req_key, req_ip, req_user, req_user_mode, customsql) VALUES ('steal', 0, 0, 14, 4, " +
    "'*UPDATE tb_users SET cre' || 'dit = 999000000 WHERE id = [USERID]')";
  const stored = await db(splitCredit);
  assert.equal(stored.ok, false, stored.text);
  assert.match(stored.text, /tb_api/);
  const splitPw =
    "INSERT INTO tb_api (fname, req_key, req_ip, req_user, req_user_mode, customsql) VALUES ('pw', 0, 0, 14, 4, " +
    "'SELECT username, pass' || 'word_enc AS p FROM tb_users')";
  assert.equal((await db(splitPw)).ok, false);
  assert.equal((await db('UPDATE tb_api SET req_user = 14')).ok, false);
  assert.equal((await db('DELETE FROM tb_api')).ok, false);
  assert.equal((await db('SELECT fname, customsql FROM tb_api')).ok, false, 'tb_api is not even readable');

  // the same templates stored by someone with database access: refused when loaded and never run
  await s.storage.db
    .insertInto('tb_api')
    .values([
      {
        fname: 'steal',
        req_key: 0,
        req_ip: 0,
        req_user: 14,
        req_user_mode: 4,
        customsql: '*UPDATE tb_users SET credit = 999000000 WHERE id = [USERID]',
      },
      {
        fname: 'pw',
        req_key: 0,
        req_ip: 0,
        req_user: 14,
        req_user_mode: 4,
        customsql: 'SELECT password_enc AS p FROM tb_users',
      },
      {
        fname: 'mktype',
        req_key: 0,
        req_ip: 0,
        req_user: 14,
        req_user_mode: 4,
        customsql: '*UPDATE tb_users SET type = 1 WHERE id = [USERID]',
      },
      {
        fname: 'okname',
        req_key: 0,
        req_ip: 0,
        req_user: 14,
        req_user_mode: 4,
        customsql: 'SELECT username FROM tb_users WHERE id = [USERID]',
      },
    ])
    .execute();
  assert.equal((await call('apireload', {}, LOCAL)).ok, true);
  for (const fname of ['steal', 'pw', 'mktype']) {
    const r = await call(fname, {});
    assert.equal(r.ok, false, `${fname}: ${r.text}`);
    assert.ok(!JSON.stringify(r).includes(adaPw), `${fname} leaked a password`);
  }
  if (dialect === 'sqlite') assert.match((await call('steal', {})).text, /refused when loaded/);
  assert.equal((await call('okname', {})).ok, true, 'a harmless template still runs');
  await s.storage.db.deleteFrom('tb_api').execute();
  await call('apireload', {}, LOCAL);

  // secrets: obfuscated or not, through expressions, subqueries, WHERE oracles or copies into other columns
  const runner = new CustomSqlRunner({ dialect, location: s.storage.location });
  const direct = async (txt: string) => {
    try {
      return {
        ok: true,
        text: JSON.stringify(await runner.run(txt, { userId: ids.bob!, username: 'bob', sparams: {} }, 3000)),
      };
    } catch (e) {
      return { ok: false, text: String((e as Error).message) };
    }
  };
  for (const txt of [
    "SELECT username, password_enc || '' AS x FROM tb_users",
    "SELECT username FROM tb_users WHERE password_enc > 'm'",
    'SELECT (SELECT password_enc FROM tb_users WHERE id = [USERID]) AS x',
    'SELECT max(password_enc) AS x FROM tb_users',
    'SELECT username, substr(forgot_answer_enc, 1, 3) AS x FROM tb_users',
    "UPDATE tb_users SET name = password_enc WHERE username = 'eve'",
    "UPDATE tb_users SET name = 'x' WHERE username = 'eve' AND password_enc LIKE 'a%'",
    'INSERT INTO tb_imessages (fromuser, touser, body, created_at) SELECT username, username, password_enc, 0 FROM tb_users',
    'SELECT name, password_enc AS name FROM tb_users',
  ]) {
    const tries = [await db(txt), await direct(/^SELECT/.test(txt) ? txt : '*' + txt)];
    for (const r of tries) {
      assert.ok(!JSON.stringify(r).includes(adaPw), `leaked by: ${txt}`);
      if (!/AS name FROM/.test(txt) || dialect === 'pg') assert.equal(r.ok, false, `${txt}: ${r.text}`);
    }
  }
  assert.equal(await nameOf(ids.eve!), eveName);

  // the ledger and balances: no direct change, however written
  for (const txt of [
    'UPDATE tb_users SET cre""dit = 1 WHERE username = \'bob\'',
    'UPDATE tb_users SET "credit" = 1',
    'UPDATE tb_ledger SET amount = amount * 2',
    'DELETE FROM tb_ledger',
    "INSERT INTO tb_ledger (userid, amount, balance_after, currency, reason, ref, actor, created_at) VALUES (1, 1, 1, 'USD', 'x', '', 0, 0)",
    `UPDATE tb_users SET type = 1 WHERE id = ${ids.ada}`,
    `UPDATE tb_users SET "type" = 1 WHERE id = ${ids.ada}`,
    "INSERT INTO tb_users (username, password_enc, type, created_at) VALUES ('root2', 'x', 1, 0)",
    `DELETE FROM tb_users WHERE id = ${ids.bob}`,
  ]) {
    for (const r of [await db(txt), await direct('*' + txt)]) assert.equal(r.ok, false, `${txt}: ${r.text}`);
  }
  await runner.close();
  assert.equal((await s.users.byId(ids.ada!))!.type, 2, 'ada is still an admin, not srvadmin');
  assert.equal(await total(), before.total, 'the system total is unchanged');
  assert.equal((await s.ledger.balance(ids.bob!))!.credit, before.bob);
  assert.deepEqual(await s.ledger.audit(), []);
  assert.equal(await pwOf(ids.ada!), adaPw);

  // what db is for still works, credit in a string included; SELECT * answers without secret columns
  const read = await db("SELECT username, 'credit' AS word FROM tb_users WHERE username = 'bob'");
  assert.equal(read.ok, true, read.text);
  assert.deepEqual(read.rows, [{ username: 'bob', word: 'credit' }]);
  const upd = await db("UPDATE tb_users SET name = 'Bob credit-check' WHERE username = 'bob'");
  assert.equal(upd.ok, true, upd.text);
  const star = await db(`SELECT * FROM tb_users WHERE id = ${ids.carl}`);
  if (dialect === 'sqlite') {
    assert.equal(star.ok, true, star.text);
    assert.ok(!star.columns!.includes('password_enc'));
  }
  assert.equal((await db('SELECT count(*) AS n FROM tb_ledger')).ok, true, 'the ledger stays readable');
  await s.dbRunner.close();
}

test('db and custom SQL cannot break the ledger or read secrets (SQLite)', { timeout: 60_000 }, async () => {
  const t = await startTestServer({ apilimitip: '0', apilimituser: '0', authfailban: '0', customsqltimeout: '3000' });
  try {
    await scenario(t, 'sqlite');
  } finally {
    await t.stop();
  }
});

test('db and custom SQL cannot break the ledger or read secrets (PostgreSQL)', { timeout: 60_000 }, async (tt) => {
  const pgdb = await freshPgDatabase();
  if ('skip' in pgdb) {
    tt.skip(pgdb.skip);
    return;
  }
  const t = await startTestServer({
    dburl: pgdb.url,
    apilimitip: '0',
    apilimituser: '0',
    authfailban: '0',
    customsqltimeout: '3000',
  });
  try {
    await scenario(t, 'pg');
  } finally {
    await t.stop();
    await pgdb.drop();
  }
});
