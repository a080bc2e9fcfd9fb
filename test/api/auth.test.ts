import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { startTestServer, ADMIN_PASSWORD, API_KEY, authMd5, freshSalt, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';

let t: TestServer;
const LOCAL = src('127.0.0.1');
const REMOTE = src('203.0.113.7');
const LAN = src('192.168.1.20');

before(async () => {
  t = await startTestServer({ authfailban: '5' });
  const h = (e: string, p: Record<string, string>) => t.srv.gateway.handle(req(e, p, LOCAL));
  assert.ok(
    (
      await h('newuseri', {
        u_username: 'bob',
        u_password: 'bobpw',
        u_pin: '7777123',
        u_did: '3612345678',
        u_credit: '12.5',
      })
    ).ok,
  );
  assert.ok((await h('newuseri', { u_username: 'rita', u_password: 'ritapw', u_type: 'reseller' })).ok);
});
after(() => t.stop());

const handle = (e: string, p: Record<string, string>, s = REMOTE) => t.srv.gateway.handle(req(e, p, s));

test('authkey + authid + authpwd', async () => {
  const r = await handle('balance', { authkey: API_KEY, authid: 'bob', authpwd: 'bobpw' });
  assert.equal(r.ok, true, r.text);
  assert.equal(r.text, '12.50 USD');
  assert.deepEqual(r.fields, { credit: '12.50', currency: 'USD' });
});

test('a wrong key, a missing key and a wrong password fail; failures never say whether the user exists', async () => {
  assert.match(
    (await handle('balance', { authkey: 'nope', authid: 'bob', authpwd: 'bobpw' }, src('203.0.113.50'))).text,
    /wrong authkey/,
  );
  assert.match(
    (await handle('balance', { authid: 'bob', authpwd: 'bobpw' }, src('203.0.113.50'))).text,
    /authkey required/,
  );
  const wrongPw = await handle('balance', { authkey: API_KEY, authid: 'bob', authpwd: 'x' }, src('203.0.113.51'));
  const noUser = await handle('balance', { authkey: API_KEY, authid: 'nosuchuser', authpwd: 'x' }, src('203.0.113.51'));
  assert.equal(wrongPw.ok, false);
  assert.deepEqual(wrongPw, noUser);
});

test('salted md5: valid, wrong, replayed salt', async () => {
  const salt = freshSalt();
  const good = await handle('balance', {
    authkey: API_KEY,
    authid: 'bob',
    authmd5: authMd5('bob', 'bobpw', salt),
    authsalt: salt,
  });
  assert.equal(good.ok, true, good.text);
  const replay = await handle('balance', {
    authkey: API_KEY,
    authid: 'bob',
    authmd5: authMd5('bob', 'bobpw', salt),
    authsalt: salt,
  });
  assert.equal(replay.ok, false);
  assert.match(replay.text, /already used/);
  const s2 = freshSalt();
  const wrong = await handle(
    'balance',
    { authkey: API_KEY, authid: 'bob', authmd5: authMd5('bob', 'nope', s2), authsalt: s2 },
    src('203.0.113.52'),
  );
  assert.equal(wrong.ok, false);
  // the server salt is part of the hash
  const s3 = freshSalt();
  assert.equal(
    (
      await handle(
        'balance',
        { authkey: API_KEY, authid: 'bob', authmd5: authMd5('bob', 'bobpw', s3, ''), authsalt: s3 },
        src('203.0.113.52'),
      )
    ).ok,
    false,
  );
});

test('authid may be a PIN, a DID or the user id; authpwd may be the PIN', async () => {
  assert.equal((await handle('balance', { authkey: API_KEY, authid: '7777123' })).ok, true);
  assert.equal((await handle('balance', { authkey: API_KEY, authid: '3612345678', authpwd: 'bobpw' })).ok, true);
  const bob = await t.srv.services.users.byUsername('bob');
  assert.equal((await handle('balance', { authkey: API_KEY, authid: String(bob!.id), authpwd: 'bobpw' })).ok, true);
  assert.equal((await handle('balance', { authkey: API_KEY, authid: 'bob', authpwd: '7777123' })).ok, true);
  // username alone is not enough in the default mode (2)
  assert.equal((await handle('balance', { authkey: API_KEY, authid: 'bob' })).ok, false);
});

test('IP trust: localhost and LAN need no key or password; not from a web page; not with trustlanip=false', async () => {
  assert.equal((await handle('info', {}, LOCAL)).ok, true);
  assert.equal((await handle('info', {}, LAN)).ok, true);
  assert.equal((await handle('info', {}, src('::1'))).ok, true);
  assert.equal((await handle('info', {}, REMOTE)).ok, false);
  const page = await handle('info', {}, src('127.0.0.1', { browser: true }));
  assert.equal(page.ok, false);
  assert.match(page.text, /authkey|authentication/);
  // trusted source may act for a named user (bulk web server)
  assert.equal((await handle('balance', { authid: 'bob' }, LOCAL)).text, '12.50 USD');
  const c = t.srv.services.config;
  c.persist({ trustlanip: 'false' });
  try {
    assert.equal((await handle('info', {}, LAN)).ok, false);
    assert.equal((await handle('info', {}, LOCAL)).ok, true);
  } finally {
    c.persist({ trustlanip: 'true' });
  }
});

test('trustediplist trusts a remote address (CIDR too)', async () => {
  const c = t.srv.services.config;
  c.persist({ trustediplist: '198.51.100.0/24' });
  try {
    assert.equal((await handle('info', {}, src('198.51.100.9'))).ok, true);
    assert.equal((await handle('info', {}, src('198.51.101.9'))).ok, false);
  } finally {
    c.persist({ trustediplist: '' });
  }
});

test('levels: end users cannot call admin APIs, admins can; resellers in between', async () => {
  const e = await handle('info', { authkey: API_KEY, authid: 'bob', authpwd: 'bobpw' });
  assert.equal(e.ok, false);
  assert.match(e.text, /not allowed for your user type/);
  assert.equal((await handle('info', { authkey: API_KEY, authid: 'admin', authpwd: ADMIN_PASSWORD })).ok, true);
  assert.equal((await handle('info', { authkey: API_KEY, authid: 'rita', authpwd: 'ritapw' })).ok, false);
  assert.equal((await handle('balance', { authkey: API_KEY, authid: 'rita', authpwd: 'ritapw' })).ok, true);
  // an enduser authenticated from localhost is still an enduser
  assert.equal((await handle('info', { authid: 'bob', authpwd: 'bobpw' }, LOCAL)).ok, false);
});

test('tb_api overrides: public, disabled, ip-checked, mode 4 and 6', async () => {
  const db = t.srv.services.storage.db;
  await db
    .insertInto('tb_api')
    .values({ fname: 'version', req_key: 0, req_ip: 0, req_user: 14, req_user_mode: 4, customsql: null })
    .execute();
  await db
    .insertInto('tb_api')
    .values({ fname: 'keepalive', req_key: 0, req_ip: 0, req_user: 2, req_user_mode: 0, customsql: null })
    .execute();
  await db
    .insertInto('tb_api')
    .values({ fname: 'balance', req_key: 1, req_ip: 1, req_user: 12, req_user_mode: 6, customsql: null })
    .execute();
  assert.equal((await handle('version', {})).ok, false, 'not before apireload');
  assert.equal((await handle('apireload', {}, LOCAL)).ok, true);
  try {
    assert.equal((await handle('version', {})).ok, true);
    assert.match((await handle('keepalive', {})).text, /disabled/);
    assert.match(
      (await handle('balance', { authkey: API_KEY, authid: 'bob', authpwd: 'bobpw' })).text,
      /not allowed from 203\.0\.113\.7/,
    );
    // mode 6: the PIN no longer authenticates
    assert.equal(
      (await handle('balance', { authid: '7777123' }, LAN)).ok,
      true,
      'trusted LAN still acts for the named user',
    );
    t.srv.services.config.persist({ apiv2ipauth: '203.0.113.0/24' });
    assert.equal((await handle('balance', { authkey: API_KEY, authid: 'bob', authpwd: 'bobpw' })).ok, true);
    assert.equal((await handle('balance', { authkey: API_KEY, authid: 'bob', authpwd: '7777123' })).ok, false);
  } finally {
    t.srv.services.config.persist({ apiv2ipauth: '' });
    await db.deleteFrom('tb_api').execute();
    await t.srv.gateway.rules.load();
  }
});

test('mode 4 (less): username alone', async () => {
  const db = t.srv.services.storage.db;
  await db
    .insertInto('tb_api')
    .values({ fname: 'balance', req_key: 0, req_ip: 0, req_user: 12, req_user_mode: 4, customsql: null })
    .execute();
  await t.srv.gateway.rules.load();
  try {
    assert.equal((await handle('balance', { authid: 'bob' })).text, '12.50 USD');
  } finally {
    await db.deleteFrom('tb_api').execute();
    await t.srv.gateway.rules.load();
  }
});

test("the server's own host is never banned", async () => {
  for (let i = 0; i < 8; i++) await handle('balance', { authkey: 'wrong', authid: 'bob', authpwd: 'x' }, LOCAL);
  assert.equal((await handle('info', {}, LOCAL)).ok, true);
});

test('repeated failures ban the IP; bannedlist shows it; delbanned lifts it; others unaffected', async () => {
  const bad = src('203.0.113.99');
  for (let i = 0; i < 5; i++) await handle('balance', { authkey: API_KEY, authid: 'bob', authpwd: 'wrong' + i }, bad);
  const r = await handle('balance', { authkey: API_KEY, authid: 'bob', authpwd: 'bobpw' }, bad);
  assert.match(r.text, /banned/);
  assert.equal(
    (await handle('balance', { authkey: API_KEY, authid: 'bob', authpwd: 'bobpw' }, src('203.0.113.98'))).ok,
    true,
  );
  const list = await handle('bannedlist', {}, LOCAL);
  assert.ok(list.rows!.some((row) => row.ip === '203.0.113.99'));
  assert.equal((await handle('delbanned', { ip: '203.0.113.99' }, LOCAL)).ok, true);
  assert.equal((await handle('balance', { authkey: API_KEY, authid: 'bob', authpwd: 'bobpw' }, bad)).ok, true);
  assert.equal((await handle('delbanned', { ip: 'not-an-ip' }, LOCAL)).ok, false);
  assert.equal((await handle('delbanned', { ip: 'all' }, LOCAL)).ok, true);
});

test('usage limits per IP and per user answer a clear ERROR', async () => {
  const c = t.srv.services.config;
  c.persist({ apilimitip: '3' });
  try {
    const s = src('203.0.113.120');
    const results = await Promise.all(Array.from({ length: 6 }, () => handle('apitest', {}, s)));
    assert.equal(results.filter((r) => r.ok).length, 3);
    assert.match(results.find((r) => !r.ok)!.text, /usage limit for 203\.0\.113\.120/);
  } finally {
    c.persist({ apilimitip: '200' });
  }
  c.persist({ apilimituser: '2' });
  try {
    const results = [];
    for (let i = 0; i < 4; i++)
      results.push(
        await handle('balance', { authkey: API_KEY, authid: 'rita', authpwd: 'ritapw' }, src(`203.0.113.${130 + i}`)),
      );
    assert.equal(results.filter((r) => r.ok).length, 2);
    assert.match(results[3]!.text, /usage limit for this user/);
  } finally {
    c.persist({ apilimituser: '100' });
  }
});

test('newuseri validates and refuses duplicates; unknown and unavailable commands answer ERROR', async () => {
  const h = (p: Record<string, string>) => handle('newuseri', p, LOCAL);
  assert.match((await h({ u_username: 'bob', u_password: 'x' })).text, /already taken/);
  assert.match((await h({ u_username: 'bad name', u_password: 'x' })).text, /u_username/);
  assert.match((await h({ u_username: 'carl', u_password: 'x', u_email: 'nope' })).text, /u_email/);
  assert.match((await h({ u_username: 'carl', u_password: 'x', u_currency: 'dollars' })).text, /u_currency/);
  assert.match((await h({ u_username: 'carl', u_password: 'x', u_credit: '-5' })).text, /u_credit/);
  // a reseller cannot create an admin
  const r = await handle('newuseri', {
    authkey: API_KEY,
    authid: 'rita',
    authpwd: 'ritapw',
    u_username: 'x1',
    u_password: 'x',
    u_type: 'admin',
  });
  assert.equal(r.ok, false);
  assert.match((await handle('nosuchapi', {}, LOCAL)).text, /unknown API "nosuchapi"/);
  const u = await handle('sms', { authkey: API_KEY, authid: 'bob', authpwd: 'bobpw', bnum: '1', txt: 'x' });
  assert.equal(u.ok, false);
  assert.match(u.text, /no SMS gateway is configured: an admin adds one with addsmsgateway/);
  assert.match((await handle('cmd', { txt: 'ls' }, LOCAL)).text, /shell execution is disabled/);
});

test('help lists what the caller may use', async () => {
  const anon = await handle('help', {});
  const names = anon.rows!.map((r) => String(r.name));
  assert.ok(names.some((n) => n.startsWith('keepalive')));
  assert.ok(!names.includes('info'));
  const admin = await handle('help', {}, LOCAL);
  assert.ok(admin.rows!.some((r) => r.name === 'info'));
  assert.ok(admin.rows!.some((r) => r.name === 'addcredit'));
  assert.ok(admin.rows!.length > 100);
  // an admin through a web page: addcredit (req_ip=1) is not usable, so not listed
  const page = await handle(
    'help',
    { authkey: API_KEY, authid: 'admin', authpwd: ADMIN_PASSWORD },
    src('127.0.0.1', { browser: true }),
  );
  assert.ok(page.rows!.some((r) => r.name === 'info'));
  assert.ok(!page.rows!.some((r) => r.name === 'addcredit'));
});

test('reload re-reads the config file and names options that need a restart', async () => {
  const c = t.srv.services.config;
  const r = await handle('reload', {}, LOCAL);
  assert.equal(r.text, 'configuration reloaded');
  const text = readFileSync(c.file, 'utf8');
  writeFileSync(c.file, text + 'tlsport=8443\n');
  try {
    const r2 = await handle('reload', {}, LOCAL);
    assert.match(r2.text, /restart the server to apply: tlsport/);
  } finally {
    c.persist({ tlsport: '443' });
  }
});

test('over UDP and SIP only loopback is trusted (a datagram source can be forged on the LAN)', async () => {
  assert.equal((await handle('info', {}, src('192.168.1.20', { transport: 'udp' }))).ok, false);
  assert.equal((await handle('info', {}, src('192.168.1.20', { transport: 'sip' }))).ok, false);
  assert.equal((await handle('info', {}, src('127.0.0.1', { transport: 'udp' }))).ok, true);
  assert.equal((await handle('info', {}, src('192.168.1.20', { transport: 'tcp' }))).ok, true);
});

test('normalizechk answers the E.164 digits a number is rated by', async () => {
  const r = await handle('normalizechk', { called: '020 123 4567', caller: '+1 (212) 555-0100', country: '36' }, LOCAL);
  assert.equal(r.text, 'called: 36201234567, caller: 12125550100');
  assert.equal((await handle('normalizechk', { called: 'abc' }, LOCAL)).ok, false);
  assert.equal((await handle('normalizechk', { called: '0036 1 234 5678' }, REMOTE)).ok, false, 'admin only');
});
