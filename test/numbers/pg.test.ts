/** The pool concurrency and the dialect-sensitive statements (upsert, insert…select, unique retry) on PostgreSQL. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req, src } from '../helpers/source.js';
import { usePgTestServer } from '../helpers/pg.js';

const pg = usePgTestServer('numbers', { apilimitip: '0', apilimituser: '0' });
const LOCAL = src('127.0.0.1');
const h = (e: string, p: Record<string, string>) => pg.t!.srv.gateway.handle(req(e, p, LOCAL));

test('PostgreSQL: 20 parallel getphonenumber by different users with 10 free numbers', async (c) => {
  if (pg.skip) return c.skip(pg.skip);
  assert.equal(pg.t!.srv.services.storage.dialect, 'pg');
  assert.equal((await h('addnumbers', { from: '3650000000', count: '10' })).text, 'added 10 number(s) to the pool');
  assert.equal(
    (await h('addnumbers', { numbers: '3650000000,3650000009' })).text,
    'added 0 number(s) to the pool (2 already in the pool)',
  );
  const names = Array.from({ length: 20 }, (_, i) => `pg${i}`);
  for (const n of names) await pg.t!.srv.services.users.create({ username: n, password: `${n}pw` });
  const results = await Promise.all(names.map((n) => h('getphonenumber', { authid: n })));
  const won = results.filter((r) => r.ok).map((r) => r.text);
  assert.equal(won.length, 10, results.map((r) => r.text).join());
  assert.equal(new Set(won).size, 10);
  for (const r of results.filter((x) => !x.ok)) assert.equal(r.text, 'no free phone number in the pool');
  const rows = await pg.t!.srv.services.storage.db.selectFrom('tb_numbers').selectAll().execute();
  assert.equal(rows.filter((x) => x.status === 'assigned').length, 10);
  assert.equal(new Set(rows.map((x) => x.userid)).size, 10);
  // each winner's DID was set to its number
  const dids = await pg
    .t!.srv.services.storage.db.selectFrom('tb_users')
    .select('did')
    .where('did', 'is not', null)
    .execute();
  assert.deepEqual(dids.map((d) => d.did).sort(), [...won].sort());
});

test('PostgreSQL: callback number limit, callforward upsert, conference rooms in parallel', async (c) => {
  if (pg.skip) return c.skip(pg.skip);
  for (let i = 0; i < 10; i++)
    assert.equal((await h('addcallbacknumber', { authid: 'pg0', anum: `3620000${i}` })).ok, true);
  assert.match((await h('addcallbacknumber', { authid: 'pg0', anum: '3629999' })).text, /at most 10/);
  assert.match(
    (await h('addcallbacknumber', { authid: 'pg0', anum: '36200000' })).text,
    /already one of your callback numbers/,
  );
  assert.equal(
    (await h('callforward', { authid: 'pg1', anum: 'pg2' })).text,
    'call forward of pg1 set: always=pg2, busy=off, noanswer=off',
  );
  assert.equal(
    (await h('callforward', { authid: 'pg1', bnum: '+36 1 234' })).text,
    'call forward of pg1 set: always=pg2, busy=361234, noanswer=off',
  );
  const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => h('getconfroom', { authid: `pg${i % 10}` })));
  assert.ok(
    rs.every((r) => r.ok),
    rs.map((r) => r.text).join(),
  );
  assert.equal(new Set(rs.map((r) => r.text)).size, 10);
  assert.equal((await h('cli', { authid: 'pg3', anum: '3630000' })).ok, true);
  assert.match((await h('cli', { authid: 'pg4', anum: '3630000' })).text, /another account/);
});
