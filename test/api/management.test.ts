/**
 * The management commands the web console's forms use, through the whole API pipeline (authentication, levels):
 * the DID pool (numbers, assignnumber, freenumber), editgateway, and the tb_api rules (apirules, setapirule,
 * delapirule, applied by apireload).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, ADMIN_PASSWORD, API_KEY, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';

let t: TestServer;
const LOCAL = src('127.0.0.1');
const REMOTE = src('203.0.113.7');
const as = (user: string, pw: string) => ({ authkey: API_KEY, authid: user, authpwd: pw });
const call = (e: string, p: Record<string, string>, s = REMOTE) => t.srv.gateway.handle(req(e, p, s));
const admin = (e: string, p: Record<string, string> = {}) => call(e, { ...as('admin', ADMIN_PASSWORD), ...p });
const boss = (e: string, p: Record<string, string> = {}) => call(e, { ...as('boss', 'bosspw1'), ...p });
const bob = (e: string, p: Record<string, string> = {}) => call(e, { ...as('bob', 'bobpw1'), ...p });

before(async () => {
  t = await startTestServer({ apilimitip: '0', apilimituser: '0' });
  const mk = (p: Record<string, string>) => call('newuseri', p, LOCAL);
  assert.ok((await mk({ u_username: 'boss', u_password: 'bosspw1', u_type: 'admin' })).ok);
  assert.ok((await mk({ u_username: 'bob', u_password: 'bobpw1' })).ok);
});
after(() => t.stop());

test('the DID pool: list, assign by hand (becomes the DID), free (DID cleared), refusals', async () => {
  assert.ok((await admin('addnumbers', { from: '4930100', count: '3' })).ok);
  const list = await admin('numbers');
  assert.equal(list.ok, true, list.text);
  assert.equal(list.text, '3 number(s) in the pool (3 free)');
  assert.deepEqual(
    list.rows!.map((r) => [r.number, r.status]),
    [
      ['4930100', 'free'],
      ['4930101', 'free'],
      ['4930102', 'free'],
    ],
  );
  const a = await boss('assignnumber', { number: '+49 30101', username: 'bob' });
  assert.equal(a.ok, true, a.text);
  assert.equal(a.text, 'number 4930101 assigned to bob');
  assert.equal(a.fields?.did, 1);
  const bobId = (await t.srv.services.users.byUsername('bob'))!.id;
  assert.equal((await t.srv.services.users.byId(bobId))!.did, '4930101');
  const assigned = await admin('numbers', { status: 'assigned' });
  assert.deepEqual(
    assigned.rows!.map((r) => [r.number, r.username]),
    [['4930101', 'bob']],
  );
  // taken: refused, nothing changed
  const again = await admin('assignnumber', { number: '4930101', username: 'boss' });
  assert.equal(again.ok, false);
  assert.match(again.text, /number 4930101 is assigned \(user id \d+\); free it first \(freenumber\)/);
  assert.match((await admin('assignnumber', { number: '4939999', username: 'bob' })).text, /not in the pool/);
  assert.match((await admin('assignnumber', { number: '12ab', username: 'bob' })).text, /is not a phone number/);
  assert.match((await admin('assignnumber', { number: '4930100', username: 'nobody' })).text, /not found/);
  assert.match((await admin('numbers', { status: 'gone' })).text, /status: expected free, locked or assigned/);
  // a plain user may not use them
  assert.match((await bob('numbers')).text, /not allowed for your user type/);
  assert.match((await bob('freenumber', { number: '4930101' })).text, /not allowed for your user type/);
  // a delete of an assigned number is refused; freeing it clears bob's DID
  assert.match((await admin('delnumber', { number: '4930101' })).text, /only free numbers can be deleted/);
  const f = await admin('freenumber', { number: '4930101' });
  assert.equal(f.ok, true, f.text);
  assert.equal(f.text, 'number 4930101 is free again');
  t.srv.services.users.clearCache();
  assert.equal((await t.srv.services.users.byId(bobId))!.did ?? '', '');
  assert.match((await admin('freenumber', { number: '4930101' })).text, /already free/);
  assert.equal((await admin('numbers')).fields?.free, 3);
});

test('editgateway: given fields change, the rest and the password stay; checked as addgateway', async () => {
  const add = await admin('addgateway', {
    name: 'gwa',
    host: '198.51.100.5',
    port: '5070',
    prefix: '49',
    password: 'trunk-secret',
    priority: '5',
  });
  assert.equal(add.ok, true, add.text);
  const id = String(add.fields!.id);
  const e = await admin('editgateway', { id, port: '5080', weight: '3', enabled: '0' });
  assert.equal(e.ok, true, e.text);
  assert.equal(
    e.text,
    `gateway gwa changed (id ${id}, 198.51.100.5:5080/udp, prefix 49, priority 5, weight 3, disabled)`,
  );
  const g = (await t.srv.services.routing.gateway(Number(id)))!;
  assert.equal(g.port, 5080);
  assert.equal(g.prefix, '49');
  assert.equal(g.enabled, false);
  assert.ok(g.passwordEnc, 'the password is kept');
  // by name, renamed; a bad value is refused and nothing changes
  assert.equal((await admin('editgateway', { name: 'gwa', host: 'trunk.example.net', port: '5060' })).ok, true);
  const bad = await admin('editgateway', { id, port: '70000' });
  assert.equal(bad.ok, false);
  assert.match(bad.text, /port: expected a whole number from 1 to 65535/);
  assert.match((await admin('editgateway', { id, inbound_ip: 'not-an-ip' })).text, /is not an IP address/);
  assert.equal((await t.srv.services.routing.gateway(Number(id)))!.host, 'trunk.example.net');
  assert.ok((await admin('addgateway', { name: 'gwb', host: '198.51.100.6' })).ok);
  assert.match((await admin('editgateway', { id, name: 'gwb' })).text, /a gateway named "gwb" already exists/);
  assert.match((await admin('editgateway', { id: '9999' })).text, /no gateway "9999"/);
  assert.match((await admin('editgateway', {})).text, /id: which gateway to change/);
  const cleared = await admin('editgateway', { id, password: '' });
  assert.equal(cleared.fields?.password, '', 'password= empty removes it');
  assert.match((await bob('editgateway', { id, port: '1' })).text, /not allowed for your user type/);
});

test('tb_api rules: saved rows apply after apireload; bad rows are refused and never stored', async () => {
  assert.equal((await admin('version')).ok, true);
  const s = await admin('setapirule', { fname: 'Version', req_user: '2' });
  assert.equal(s.ok, true, s.text);
  assert.equal(s.text, 'tb_api rule version added; apireload applies it');
  assert.equal((await admin('version')).ok, true, 'not yet applied');
  assert.ok((await admin('apireload')).ok);
  assert.match((await admin('version')).text, /disabled|not allowed/);
  const list = await admin('apirules');
  assert.deepEqual(list.rows, [
    { id: list.rows![0]!.id, fname: 'version', req_key: '', req_ip: '', req_user: 2, req_user_mode: '', customsql: '' },
  ]);
  // changed in place (one row), then a custom API with its SQL
  const ch = await admin('setapirule', { fname: 'version', req_user: '6' });
  assert.equal(ch.text, 'tb_api rule version changed; apireload applies it');
  const c = await admin('setapirule', {
    fname: 'myname',
    req_user: '12',
    customsql: 'SELECT username FROM tb_users WHERE id = [USERID]',
  });
  assert.equal(c.ok, true, c.text);
  assert.ok((await admin('apireload')).ok);
  assert.equal((await admin('version')).ok, true);
  const mine = await bob('myname');
  assert.equal(mine.ok, true, mine.text);
  assert.equal(mine.rows?.[0]?.username, 'bob');
  // refusals: nothing written
  const before = (await admin('apirules')).rows!.length;
  const bad = [
    [{ fname: 'nosuchcmd', req_user: '6' }, /no command nosuchcmd; a rule for a new API needs its customsql/],
    [{ fname: 'x y', req_user: '6' }, /fname: 1-64 characters/],
    [{ fname: 'version', req_user: '7' }, /req_user: expected 2, 4, 6, 8, 10, 12, 14/],
    [{ fname: 'version', req_key: '2' }, /req_key: expected 0, 1/],
    [{ fname: 'version', req_user_mode: '3' }, /req_user_mode: expected 2, 4, 6/],
    [{ fname: 'leak', customsql: 'SELECT password FROM tb_users' }, /password|secret|refused/i],
    [{ fname: 'wipe', customsql: 'DELETE FROM tb_api' }, /not allowed|tb_api/],
    [{ fname: 'broken', customsql: 'SELEC nothing' }, /./],
    [{ fname: 'setapirule', req_user: '14' }, /the rule of setapirule cannot be changed/],
  ] as const;
  for (const [p, re] of bad) {
    const r = await admin('setapirule', { ...p });
    assert.equal(r.ok, false, `${JSON.stringify(p)}: ${r.text}`);
    assert.match(r.text, re);
  }
  assert.equal((await admin('apirules')).rows!.length, before);
  // server admin only: an admin-type account may not read or write them
  assert.match((await boss('apirules')).text, /not allowed for your user type/);
  assert.match((await boss('setapirule', { fname: 'version', req_user: '14' })).text, /not allowed for your user type/);
  assert.equal(
    (await admin('delapirule', { fname: 'version' })).text,
    'tb_api rule version deleted; apireload applies it',
  );
  assert.match((await admin('delapirule', { fname: 'version' })).text, /no tb_api rule for version/);
});
