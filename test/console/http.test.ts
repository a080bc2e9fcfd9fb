/**
 * The web console's security core over plain HTTP: log-in (password and authmd5), the session cookie, CSRF and
 * Origin checks, no data without a session, log-out, the console's commands run as the user with that user's levels
 * and no address trust, failed log-ins counting toward the ban.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_PASSWORD, authMd5, freshSalt, startTestServer, type TestServer } from '../helpers/server.js';

let ts: TestServer;
let origin: string;

before(async () => {
  ts = await startTestServer({ authfailban: '3' });
  origin = `http://127.0.0.1:${ts.port}`;
  const s = ts.srv.services;
  await s.users.create({ username: 'eve', password: 'Eve-pw-12345', type: 6, name: 'End user' });
});
after(() => ts.stop());

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

async function req(path: string, init: RequestInit & { cookie?: string; csrf?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...(init.headers as Record<string, string>) };
  if (init.cookie) headers.cookie = init.cookie;
  if (init.csrf) headers['x-csrf-token'] = init.csrf;
  const res = await fetch(ts.url(path), { ...init, headers, redirect: 'manual' });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: res.status, body, headers: res.headers };
}

const post = (path: string, body: unknown, extra: Record<string, string> = {}, cookie?: string, csrf?: string) =>
  req(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin, ...extra },
    body: JSON.stringify(body),
    cookie,
    csrf,
  });

async function login(username: string, password: string): Promise<{ cookie: string; csrf: string; raw: string }> {
  const r = await post('/console/api/login', { username, password });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const raw = r.headers.get('set-cookie') ?? '';
  return { cookie: raw.split(';')[0]!, csrf: String(r.body.csrf), raw };
}

test('log-in sets an HttpOnly SameSite=Strict cookie on /console with a 32-byte id; no Secure over plain HTTP', async () => {
  const { raw, csrf } = await login('admin', ADMIN_PASSWORD);
  assert.match(raw, /^vxsession=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/console$/);
  assert.equal(Buffer.from(raw.slice(10, 53), 'base64url').length, 32);
  assert.match(csrf, /^[A-Za-z0-9_-]{43}$/);
});

test('authmd5 with a fresh salt logs in; the same salt again is refused', async () => {
  const salt = freshSalt();
  const md5 = authMd5('admin', ADMIN_PASSWORD, salt);
  const ok = await post('/console/api/login', { username: 'admin', authmd5: md5, authsalt: salt });
  assert.equal(ok.status, 200);
  const again = await post('/console/api/login', { username: 'admin', authmd5: md5, authsalt: salt });
  assert.equal(again.status, 403);
  assert.match(String(again.body.error), /authsalt already used/);
});

test('no session: 401 and no data on every console API', async () => {
  for (const p of ['session', 'commands', 'events', 'cdrs', 'cdrs.csv', 'charts']) {
    const r = await req(`/console/api/${p}`);
    assert.equal(r.status, 401, p);
    assert.deepEqual(Object.keys(r.body), ['error'], p);
  }
  const forged = await req('/console/api/commands', { cookie: 'vxsession=' + 'A'.repeat(43) });
  assert.equal(forged.status, 401);
  const run = await post('/console/api/run', { command: 'version' });
  assert.equal(run.status, 401);
});

test('a POST without the CSRF token, with a wrong one, or from a foreign Origin is refused with 403', async () => {
  const { cookie, csrf } = await login('admin', ADMIN_PASSWORD);
  const body = { command: 'newuser', params: { u_username: 'csrfvictim', u_password: 'Victim-pw-123' } };
  const none = await post('/console/api/run', body, {}, cookie);
  assert.equal(none.status, 403);
  const wrong = await post('/console/api/run', body, {}, cookie, csrf.slice(0, -2) + 'xx');
  assert.equal(wrong.status, 403);
  const foreign = await post('/console/api/run', body, { origin: 'http://evil.example' }, cookie, csrf);
  assert.equal(foreign.status, 403);
  const crossSite = await post('/console/api/run', body, { 'sec-fetch-site': 'cross-site' }, cookie, csrf);
  assert.equal(crossSite.status, 403);
  const otherPort = await post('/console/api/run', body, { origin: 'http://127.0.0.1:1' }, cookie, csrf);
  assert.equal(otherPort.status, 403);
  assert.equal(await ts.srv.services.users.byUsername('csrfvictim'), undefined, 'nothing was created');
  const loginForged = await post(
    '/console/api/login',
    { username: 'admin', password: ADMIN_PASSWORD },
    {
      origin: 'http://evil.example',
    },
  );
  assert.equal(loginForged.status, 403);
  assert.equal(loginForged.headers.get('set-cookie'), null);
  // and the genuine request passes
  const good = await post('/console/api/run', body, {}, cookie, csrf);
  assert.equal(good.status, 200);
  assert.equal((good.body.result as { ok: boolean }).ok, true, JSON.stringify(good.body));
});

test('the console runs commands as the user; the encoded answer is in the chosen format', async () => {
  const { cookie, csrf } = await login('admin', ADMIN_PASSWORD);
  const r = await post('/console/api/run', { command: 'version', format: 'xml' }, {}, cookie, csrf);
  assert.equal(r.status, 200);
  const enc = r.body.encoded as { body: string; type: string };
  assert.match(enc.type, /xml/);
  assert.match(enc.body, /<\?xml|<mvapiresp|<response|<answer/i);
  const bal = await post('/console/api/run', { command: 'balance', format: 'text' }, {}, cookie, csrf);
  assert.equal((bal.body.result as { ok: boolean }).ok, true, JSON.stringify(bal.body));
});

test('req_ip=1 commands get no address trust from the console (a loopback browser is not trusted)', async () => {
  const { cookie, csrf } = await login('admin', ADMIN_PASSWORD);
  const r = await post(
    '/console/api/run',
    { command: 'addcredit', params: { username: 'eve', credit: '5' } },
    {},
    cookie,
    csrf,
  );
  const result = r.body.result as { ok: boolean; text: string };
  assert.equal(result.ok, false);
  assert.match(result.text, /apiv2ipauth/);
  const list = await req('/console/api/commands', { cookie });
  const names = (list.body.commands as Array<{ name: string }>).map((c) => c.name);
  assert.ok(!names.includes('addcredit'), 'addcredit is not offered without a listed address');
  assert.ok(names.includes('newuseri') && names.includes('version'));
});

test('an end user sees and may run only end-user commands', async () => {
  const { cookie, csrf } = await login('eve', 'Eve-pw-12345');
  const list = await req('/console/api/commands', { cookie });
  const cmds = list.body.commands as Array<{ name: string; reqUser: number }>;
  assert.ok(cmds.length > 3);
  assert.ok(
    cmds.every((c) => c.reqUser >= 12),
    JSON.stringify(cmds.filter((c) => c.reqUser < 12)),
  );
  assert.ok(cmds.some((c) => c.name === 'balance'));
  assert.ok(!cmds.some((c) => c.name === 'newuseri' || c.name === 'quickstat' || c.name === 'db'));
  const me = await req('/console/api/session', { cookie });
  assert.equal((me.body.server as { authkey?: string }).authkey, undefined, 'no API key for an end user');
  const r = await post('/console/api/run', { command: 'quickstat' }, {}, cookie, csrf);
  assert.equal((r.body.result as { ok: boolean }).ok, false);
  assert.match((r.body.result as { text: string }).text, /not allowed for your user type/);
});

test('log-out deletes the session; a disabled account loses its session at once', async () => {
  const a = await login('admin', ADMIN_PASSWORD);
  const out = await post('/console/api/logout', {}, {}, a.cookie, a.csrf);
  assert.equal(out.status, 200);
  assert.match(out.headers.get('set-cookie') ?? '', /Max-Age=0/);
  assert.equal((await req('/console/api/session', { cookie: a.cookie })).status, 401);

  const s = ts.srv.services;
  const u = await s.users.create({ username: 'tmpuser', password: 'Tmp-pw-123456', type: 6, name: 'x' });
  const b = await login('tmpuser', 'Tmp-pw-123456');
  await s.storage.db.updateTable('tb_users').set({ enabled: 0 }).where('id', '=', u.id).execute();
  s.users.clearCache();
  assert.equal((await req('/console/api/session', { cookie: b.cookie })).status, 401);
});

test('pages carry a strict CSP, nosniff and frame-ancestors none; /console/api answers JSON', async () => {
  const page = await fetch(ts.url('/console/'));
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  const csp = page.headers.get('content-security-policy') ?? '';
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  const html = await page.text();
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
  const js = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)![1]!;
  const asset = await fetch(ts.url(js));
  assert.match(asset.headers.get('content-type') ?? '', /^text\/javascript/);
  const traversal = await fetch(ts.url('/console/..%2f..%2fpackage.json'));
  assert.notEqual(traversal.status, 200);
  const pre = await fetch(ts.url('/console/api/run'), {
    method: 'OPTIONS',
    headers: { origin: 'http://evil.example' },
  });
  assert.equal(pre.headers.get('access-control-allow-origin'), null, 'no CORS for the console');
});

test('failed console log-ins count toward the API ban of the address; a banned address cannot log in', async () => {
  const s = ts.srv.services;
  // loopback itself is never banned (the domain's rule): the failures are seen where they are counted
  const seen: string[] = [];
  const real = s.bans.recordFailure.bind(s.bans);
  s.bans.recordFailure = async (ip: string, what: string) => {
    seen.push(`${ip} ${what}`);
    return real(ip, what);
  };
  try {
    for (let i = 0; i < 2; i++) {
      const r = await post('/console/api/login', { username: 'admin', password: 'wrong' + i });
      assert.equal(r.status, 403);
      assert.equal(r.body.error, 'authentication failed');
    }
    const unknown = await post('/console/api/login', { username: 'nobody-here', password: 'x' });
    assert.equal(unknown.body.error, 'authentication failed', 'the same answer for an unknown user');
  } finally {
    s.bans.recordFailure = real;
  }
  assert.deepEqual(seen, Array(3).fill('127.0.0.1 console log-in'));
  await s.bans.ban('127.0.0.1', 'test', 60_000);
  try {
    const r = await post('/console/api/login', { username: 'admin', password: ADMIN_PASSWORD });
    assert.equal(r.status, 403);
    assert.match(String(r.body.error), /banned/);
  } finally {
    await s.bans.remove('127.0.0.1');
  }
});

test('tariff import: CSRF required, admins only, progress then the result as NDJSON', async () => {
  const admin = await login('admin', ADMIN_PASSWORD);
  const csv = 'prefix,destination,price,connectfee,minduration,increment,currency\n4466,Http Land,0.25,0,1,1,USD\n';
  assert.equal((await post('/console/api/tariffs/import', { csv }, {}, admin.cookie)).status, 403);
  const eve = await login('eve', 'Eve-pw-12345');
  const refused = await post('/console/api/tariffs/import', { csv }, {}, eve.cookie, eve.csrf);
  assert.equal(refused.status, 403);
  assert.match(String(refused.body.error), /admin/);
  const r = await post('/console/api/tariffs/import', { csv }, {}, admin.cookie, admin.csrf);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /ndjson/);
  const lines = String(r.body.text)
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { result?: { ok: boolean; imported: number } });
  assert.deepEqual(
    { ok: lines.at(-1)?.result?.ok, imported: lines.at(-1)?.result?.imported },
    { ok: true, imported: 1 },
  );
  const admins = await ts.srv.services.users.byUsername('admin');
  const q = await ts.srv.services.rating.quote(admins!, '4466100');
  assert.equal(q.rate.destination, 'Http Land');
});

test('management forms: a cross-site or token-less setapirule/assignnumber is refused and writes nothing', async () => {
  const { cookie, csrf } = await login('admin', ADMIN_PASSWORD);
  const run = { command: 'setapirule', params: { fname: 'balance', req_user: '14' } };
  const forged = await post(
    '/console/api/run',
    run,
    { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
    cookie,
    csrf,
  );
  assert.equal(forged.status, 403);
  const noToken = await post('/console/api/run', run, {}, cookie);
  assert.equal(noToken.status, 403);
  assert.equal((await ts.srv.services.storage.db.selectFrom('tb_api').selectAll().execute()).length, 0);
  const good = await post('/console/api/run', run, {}, cookie, csrf);
  assert.equal(good.status, 200);
  assert.equal((good.body.result as { ok: boolean }).ok, true, JSON.stringify(good.body));
  await ts.srv.services.storage.db.deleteFrom('tb_api').execute();
});

test('the queue view over the events stream: depths for an admin, refused to an end user', async () => {
  const firstQueues = async (
    cookie: string,
  ): Promise<{ ok: boolean; text: string; fields?: Record<string, number> }> => {
    const ac = new AbortController();
    const res = await fetch(ts.url('/console/api/events?views=queues'), { headers: { cookie }, signal: ac.signal });
    const reader = res.body!.getReader();
    let buf = '';
    try {
      while (!/event: queues\ndata: .*\n/.test(buf)) buf += new TextDecoder().decode((await reader.read()).value);
    } finally {
      ac.abort();
    }
    assert.doesNotMatch(buf, /event: (calls|registrations|bans|gateways)/, 'only the view asked for');
    return JSON.parse(/event: queues\ndata: (.*)\n/.exec(buf)![1]!);
  };
  const admin = await firstQueues((await login('admin', ADMIN_PASSWORD)).cookie);
  assert.equal(admin.ok, true);
  assert.deepEqual(admin.fields, { sms: 0, mail: 0, fax: 0, webhook: 0 });
  const eve = await firstQueues((await login('eve', 'Eve-pw-12345')).cookie);
  assert.equal(eve.ok, false);
  assert.equal(eve.text, 'the queues are shown to admins only');
});
