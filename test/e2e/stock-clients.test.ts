/**
 * Replays the request shapes stock Mizu clients send (the vendor's API examples, the old xmapi HTTP interface,
 * the webphone's calls) against a running server, and reads each answer the way such a client does: in `text`
 * format the last line is OK or ERROR and what comes before it is the answer; presence_get/presence_set answer
 * one line, `OK: …` / `ERROR: …`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startTestServer, API_KEY, ADMIN_PASSWORD, authMd5, freshSalt, type TestServer } from '../helpers/server.js';
import { curl, LineClient, udpAsk, wsOpen, wsAsk } from '../helpers/clients.js';
import { importTariffsCsv } from '../../src/domain/rating/csv.js';
import { generatePins } from '../../src/domain/billing/pins.js';

let t: TestServer;
const KEY = API_KEY;
/** authmd5 as a stock client computes it: no server salt configured. */
const md5 = (user: string, pwd: string, salt: string) => authMd5(user, pwd, salt, '');
const md5Auth = (user: string, pwd: string) => {
  const salt = freshSalt();
  return `authkey=${KEY}&authid=${user}&authmd5=${md5(user, pwd, salt)}&authsalt=${salt}`;
};

/** A client's reading of a text answer: the last line is the status, the lines before it the answer. */
function parseText(body: string): { ok: boolean; answer: string } {
  const lines = body.split('\r\n');
  const last = lines.pop();
  assert.ok(last === 'OK' || last === 'ERROR', `answer must end with OK or ERROR: ${JSON.stringify(body)}`);
  return { ok: last === 'OK', answer: lines.join('\r\n') };
}

/** The webphone's reading of presence_get: `OK: puserlist: user:status,…` → user → status. */
function parsePuserlist(body: string): Map<string, string> {
  const m = /^OK: puserlist: (.*)$/.exec(body);
  assert.ok(m, `not the documented presence_get shape: ${JSON.stringify(body)}`);
  const out = new Map<string, string>();
  for (const pair of m[1]!.split(',')) {
    const parts = pair.split(':');
    assert.equal(parts.length, 2, `one user:status pair each: ${JSON.stringify(pair)}`);
    out.set(parts[0]!, parts[1]!);
  }
  return out;
}

const get = async (query: string) => (await curl([t.url(`/mvapireq/?${query}`)])).body;

/** Sends raw bytes on a fresh TCP connection (as nc or telnet would) and returns everything answered. */
function raw(chunks: string[], gapMs = 30): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(t.port, '127.0.0.1', async () => {
      for (const c of chunks) {
        s.write(c);
        await new Promise((r) => setTimeout(r, gapMs));
      }
    });
    let d = '';
    s.setEncoding('utf8');
    s.on('data', (x: string) => (d += x));
    s.on('close', () => resolve(d));
    s.on('error', reject);
    s.setTimeout(5000, () => s.destroy(new Error(`no close; got ${JSON.stringify(d.slice(0, 200))}`)));
  });
}

before(async () => {
  // a stock client's configuration: no server md5 salt
  t = await startTestServer({ apiv2md5salt: '', apilimitip: '0', apilimituser: '0', defaultcountrycode: '1' });
  const h = (q: string) => get(q);
  assert.match(await h('apientry=newuseri&u_username=bob&u_password=bobpw&u_credit=7.25&u_currency=EUR'), /OK$/);
  assert.match(await h('apientry=newuseri&u_username=alice&u_password=alicepw&u_currency=EUR'), /OK$/);
  const db = t.srv.services.storage.db;
  const csv = 'prefix,destination,price,connectfee,minduration,increment,currency\n36,Hungary,0.02,0,60,60,EUR\n';
  assert.deepEqual((await importTariffsCsv(db, csv)).errors, []);
  await t.srv.services.rating.load();
});
after(() => t.stop());

test('vendor examples: apitest1 and the four balance forms', async () => {
  assert.equal(parseText(await get('apientry=apitest1')).ok, true);
  assert.equal(parseText(await get('apientry=apitest')).ok, true);
  for (const q of [
    'apientry=balance&authid=bob',
    `apientry=balance&authkey=${KEY}&authid=bob&authpwd=bobpw`,
    `apientry=balance&${md5Auth('bob', 'bobpw')}`,
    // the webphone's credit request: md5 with a per-request salt and a cache-busting now=
    `apientry=balance&${md5Auth('bob', 'bobpw')}&now=415`,
  ]) {
    assert.deepEqual(parseText(await get(q)), { ok: true, answer: '7.25 EUR' }, q);
  }
});

test('authmd5 without authsalt is refused, naming the option; accepted when apimd5nosalt=true', async () => {
  const q = `apientry=balance&authkey=${KEY}&authid=bob&authmd5=${md5('bob', 'bobpw', '')}`;
  const r = parseText(await get(q));
  assert.equal(r.ok, false);
  assert.match(r.answer, /authmd5 needs authsalt.*apimd5nosalt=true/);
  t.srv.services.config.persist({ apimd5nosalt: 'true' });
  try {
    assert.deepEqual(parseText(await get(q)), { ok: true, answer: '7.25 EUR' });
  } finally {
    t.srv.services.config.persist({ apimd5nosalt: 'false' });
  }
  // the per-request salt keeps its replay protection
  const salt = freshSalt();
  const once = `apientry=balance&authkey=${KEY}&authid=bob&authmd5=${md5('bob', 'bobpw', salt)}&authsalt=${salt}`;
  assert.equal(parseText(await get(once)).ok, true);
  assert.match(parseText(await get(once)).answer, /authsalt already used/);
});

test('vendor examples: rating, charge and callback take their number in anum', async () => {
  const rate = parseText(await get(`apientry=rating&${md5Auth('bob', 'bobpw')}&anum=3612345678`));
  assert.equal(rate.ok, true, rate.answer);
  assert.match(rate.answer, /0\.02/);
  // bnum (the destination) wins over anum when both are given
  const both = parseText(await get(`apientry=rating&${md5Auth('bob', 'bobpw')}&anum=3612345678&bnum=4420794600`));
  assert.equal(both.ok, false);
  assert.match(both.answer, /4420794600/);

  const { pins } = await generatePins(t.srv.services.storage.db, {
    count: 1,
    value: 1_000_000,
    currency: 'EUR',
    name: 'compat',
    createdBy: 1,
  });
  const charged = parseText(await get(`apientry=charge&${md5Auth('alice', 'alicepw')}&anum=${pins[0]}&now`));
  assert.equal(charged.ok, true, charged.answer);
  assert.match(charged.answer, /^charged 1\.00 EUR; your balance 1\.00 EUR$/);

  // callback: anum is the number called back; with no route the refusal names it
  const cb = parseText(await get(`apientry=callback&${md5Auth('bob', 'bobpw')}&anum=3619998888&bnum=3612345678`));
  assert.match(cb.answer, /^callback: 3619998888: /);
});

test('vendor example: addcredit with pin=USERNAME names the account to credit', async () => {
  const r = parseText(await get(`apientry=addcredit&${md5Auth('admin', ADMIN_PASSWORD)}&pin=alice&credit=2.5`));
  assert.equal(r.ok, true, r.answer);
  assert.match(r.answer, /^added 2\.50 EUR to alice; balance 3\.50 EUR$/);
});

test('webphone presence: presence_set, then presence_get in the documented one-line shape', async () => {
  const set = await get(`apientry=presence_set&${md5Auth('alice', 'alicepw')}&pstatus=Away&ptype=0`);
  assert.equal(set, 'OK: presence set to Away');
  const body = await get(`apientry=presence_get&${md5Auth('bob', 'bobpw')}&userlist=alice,bob,x:y,ghost&ptype=1`);
  const users = parsePuserlist(body);
  assert.deepEqual([...users.keys()], ['alice', 'bob', 'ghost'], 'a name with ":" is not echoed');
  assert.equal(users.get('alice'), 'Away');
  const missing = await get(`apientry=presence_get&${md5Auth('bob', 'bobpw')}&ptype=1`);
  assert.match(missing, /^ERROR: presence_get needs /);
  // the richer formats keep their rows
  const j = JSON.parse(await get(`apientry=presence_get&${md5Auth('bob', 'bobpw')}&userlist=alice&format=json`));
  assert.equal(j.text, 'puserlist: alice:Away');
  assert.deepEqual(j.rows[0], { user: 'alice', status: 'Away', code: 1 });
});

test('webphone calls: verifyuser with userlist, sendim; status of another user', async () => {
  assert.deepEqual(parseText(await get(`apientry=verifyuser&${md5Auth('bob', 'bobpw')}&userlist=alice`)), {
    ok: true,
    answer: '1',
  });
  assert.deepEqual(parseText(await get(`apientry=verifyuser&${md5Auth('bob', 'bobpw')}&userlist=alice,nobody`)), {
    ok: true,
    answer: 'alice:1,nobody:0',
  });
  const im = parseText(await get(`apientry=sendim&${md5Auth('bob', 'bobpw')}&bnum=alice&txt=hello%20there`));
  assert.equal(im.ok, true, im.answer);
  assert.match(im.answer, /1 stored for offline users/);
  assert.match(
    await get(`apientry=presence_set&${md5Auth('alice', 'alicepw')}&pstatus=Online&ptype=1`),
    /XOFFMESSAGE:bob:hello there/,
  );
  // status is the caller's own; an end user naming another user is sent to verifyuser
  const other = parseText(await get(`apientry=status&${md5Auth('bob', 'bobpw')}&username=alice`));
  assert.equal(other.ok, false);
  assert.match(other.answer, /verifyuser/);
  assert.deepEqual(parseText(await get(`apientry=status&${md5Auth('bob', 'bobpw')}&username=bob`)), {
    ok: true,
    answer: '1',
  });
  assert.equal(parseText(await get(`apientry=status&${md5Auth('admin', ADMIN_PASSWORD)}&username=alice`)).answer, '1');
});

test('requests as typed: raw spaces in the request line over a raw socket', async () => {
  const line = 'GET /mvapireq/?apientry=db&txt=SELECT username FROM tb_users WHERE id = 2 HTTP/1.1\r\n';
  const r = await raw([line + 'Host: 127.0.0.1\r\nConnection: close\r\n\r\n']);
  assert.match(r, /^HTTP\/1\.1 200 /);
  assert.match(r, /\r\n1 rows\r\nusername\r\nbob\r\nOK\r\n/); // inside one chunk of the chunked body
  // typed slowly (the first line arrives in pieces), HTTP/1.0 without headers, as nc sends it
  const slow = await raw([
    'GET /mvapireq/?apientry=db&txt=SELECT',
    ' username FROM tb_users WHERE id = 2',
    ' HTTP/1.0\r\n\r\n',
  ]);
  assert.match(slow, /^HTTP\/1\.1 200 /);
  assert.match(slow, /bob\r\nOK$/);
  // the old API does not URL-encode its parameters either
  const old = await raw([
    `GET /xmapi/rating?key=${KEY}&username=bob&password=bobpw&number=36 1 234 5678&now HTTP/1.0\r\n\r\n`,
  ]);
  assert.match(old, /^HTTP\/1\.1 200 /);
  assert.match(old, /\r\n\r\nOK:.*0\.02/s);
  // curl encodes the spaces itself: the same answer
  const c = await curl([
    '-G',
    t.url('/mvapireq/'),
    '--data-urlencode',
    'apientry=db',
    '--data-urlencode',
    'txt=SELECT username FROM tb_users WHERE id = 2',
  ]);
  assert.match(c.body, /bob\r\nOK$/);
});

test('raw TCP, UDP and WebSocket lines with raw spaces', async () => {
  const q = '/mvapireq/?apientry=db&txt=SELECT username FROM tb_users WHERE id = 2';
  const c = await LineClient.open(t.port);
  try {
    c.send(`${q}\r\n`);
    assert.match(await c.answer(), /bob\r\nOK$/);
    c.send(`/mvapireq/?apientry=apitest&authkey=${KEY}&authid=bob&authpwd=bobpw\r\n`);
    assert.match(await c.answer(), /OK$/);
  } finally {
    c.sock.destroy();
  }
  assert.match(await udpAsk(t.port, q), /bob\r\nOK$/);
  const ws = await wsOpen(`ws://127.0.0.1:${t.port}/mvstwebsock/`);
  try {
    assert.match(await wsAsk(ws, q), /bob\r\nOK$/);
  } finally {
    ws.close();
  }
});
