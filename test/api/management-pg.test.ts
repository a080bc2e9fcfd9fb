/**
 * The console's management commands on PostgreSQL: the DID pool's assign/free (the DID cleared in the same
 * transaction), editgateway (a taken name refused by the unique index), tb_api rules written, replaced and deleted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req, src } from '../helpers/source.js';
import { usePgTestServer } from '../helpers/pg.js';
import { ADMIN_PASSWORD, API_KEY } from '../helpers/server.js';

const pg = usePgTestServer('management', { apilimitip: '0', apilimituser: '0' });
const REMOTE = src('203.0.113.9');
const h = (e: string, p: Record<string, string> = {}) =>
  pg.t!.srv.gateway.handle(req(e, { authkey: API_KEY, authid: 'admin', authpwd: ADMIN_PASSWORD, ...p }, REMOTE));

test('PostgreSQL: assignnumber / freenumber, editgateway, setapirule / apirules / delapirule', async (c) => {
  if (pg.skip) return c.skip(pg.skip);
  const s = pg.t!.srv.services;
  assert.equal(s.storage.dialect, 'pg');
  assert.ok((await h('newuseri', { u_username: 'pgdora', u_password: 'pgdorapw' })).ok);
  assert.ok((await h('addnumbers', { numbers: '4940100,4940101' })).ok);
  const a = await h('assignnumber', { number: '4940101', username: 'pgdora' });
  assert.equal(a.text, 'number 4940101 assigned to pgdora');
  const dora = (await s.users.byUsername('pgdora'))!;
  assert.equal((await s.users.byId(dora.id))!.did, '4940101');
  assert.match((await h('assignnumber', { number: '4940101', username: 'pgdora' })).text, /free it first/);
  assert.equal((await h('freenumber', { number: '4940101' })).text, 'number 4940101 is free again');
  s.users.clearCache();
  assert.equal((await s.users.byId(dora.id))!.did ?? '', '');
  assert.equal((await h('numbers', {})).fields?.free, 2);

  const g = await h('addgateway', { name: 'pg-e1', host: '192.0.2.50', password: 'pw' });
  assert.ok(g.ok, g.text);
  assert.ok((await h('addgateway', { name: 'pg-e2', host: '192.0.2.51' })).ok);
  const id = String(g.fields!.id);
  const e = await h('editgateway', { id, port: '5099', prefix: '49' });
  assert.equal(e.ok, true, e.text);
  const stored = (await s.routing.gateway(Number(id)))!;
  assert.deepEqual([stored.port, stored.prefix, Boolean(stored.passwordEnc)], [5099, '49', true]);
  assert.equal((await h('editgateway', { id, name: 'pg-e2' })).text, 'a gateway named "pg-e2" already exists');
  assert.equal((await s.routing.gateway(Number(id)))!.name, 'pg-e1');

  assert.match((await h('setapirule', { fname: 'version', req_user: '2' })).text, /added/);
  assert.match((await h('setapirule', { fname: 'version', req_user: '6', req_key: '0' })).text, /changed/);
  const ok = await h('setapirule', { fname: 'pgmine', customsql: 'SELECT username FROM tb_users WHERE id = [USERID]' });
  assert.equal(ok.ok, true, ok.text);
  assert.equal((await h('setapirule', { fname: 'pgbad', customsql: 'SELEC 1' })).ok, false);
  const list = await h('apirules', {});
  assert.deepEqual(
    list.rows!.map((r) => [r.fname, r.req_key, r.req_user]),
    [
      ['pgmine', '', ''],
      ['version', 0, 6],
    ],
  );
  assert.ok((await h('apireload', {})).ok);
  assert.equal((await h('pgmine', {})).rows?.[0]?.username, 'admin');
  assert.match((await h('delapirule', { fname: 'pgmine' })).text, /deleted/);
  assert.equal((await h('apirules', {})).fields?.count, 1);
});
