/**
 * SIP services over a fake stack with a real server (database, users, ban list, API gateway): registrar, digest,
 * bans, MESSAGE + offline store, presence, OPTIONS, API over SIP, and the API commands.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { req as apiReq, src as apiSrc } from '../../helpers/source.js';
import { SipServer } from '../../../src/sip/server.js';
import { UserType } from '../../../src/domain/accounts/types.js';
import { FakeStack, FakeTx, sipRequest, authorize, header, source } from './fake.js';
import type { SipRequest } from '../../../src/sip/message/index.js';
import type { SipSource } from '../../../src/sip/stack.js';

let t: TestServer;
let stack: FakeStack;
let sip: SipServer;
const LOCAL = apiSrc('127.0.0.1');
const D = '127.0.0.1';

before(async () => {
  t = await startTestServer({ authfailban: '3', sipminexpires: '60', sipmaxexpires: '3600' });
  t.srv.services.config.persist({ sipapi: 'true' });
  const u = t.srv.services.users;
  await u.create({ username: 'alice', password: 'alicepw' });
  await u.create({ username: 'bob', password: 'bobpw' });
  await u.create({ username: 'carol', password: 'carolpw' });
  await u.create({ username: 'agent1', password: 'agentpw', type: UserType.support });
  stack = new FakeStack();
  sip = new SipServer(t.srv.services, stack, {
    apiHandler: async (text, s) => {
      const r = await t.srv.gateway.handle(apiReq(text.split(/\s+/)[0]!, {}, { ...LOCAL, ip: s.ip, transport: 'sip' }));
      return `${r.ok ? 'OK' : 'ERROR'}: ${r.text}`;
    },
    imWaitMs: 500,
    digestAlgorithms: ['MD5', 'SHA-256'],
  });
  (t.srv.services as unknown as { sip: SipServer }).sip = sip;
  await sip.start();
});
after(async () => {
  await sip.stop();
  await t.stop();
});

async function run(r: SipRequest, s: SipSource = source()): Promise<FakeTx> {
  const tx = new FakeTx(r, s);
  await sip.handle(r, tx, s);
  return tx;
}

/** REGISTER with the 401 round: returns the final transaction. */
async function register(
  user: string,
  pw: string,
  opts: { contact?: string; expires?: number; s?: SipSource; callId?: string; cseq?: number } = {},
) {
  const contact = opts.contact ?? `<sip:${user}@10.1.1.1:5070>`;
  const h = {
    From: `<sip:${user}@${D}>;tag=f1`,
    To: `<sip:${user}@${D}>`,
    Contact: contact,
    Expires: String(opts.expires ?? 600),
    'Call-ID': opts.callId ?? `reg-${user}`,
    'User-Agent': 'test-ua',
  };
  const cseq = opts.cseq ?? 1;
  const first = await run(sipRequest('REGISTER', `sip:${D}`, { ...h, CSeq: `${cseq} REGISTER` }), opts.s);
  assert.equal(first.last.status, 401);
  // alternate: even CSeq answers the SHA-256 challenge
  const chs = first.last.headers.filter((x) => x.name === 'WWW-Authenticate').map((x) => x.value);
  const ch = chs[(opts.cseq ?? 1) % 2 === 0 ? 1 : 0]!;
  return run(
    sipRequest('REGISTER', `sip:${D}`, {
      ...h,
      CSeq: `${cseq + 1} REGISTER`,
      Authorization: authorize(ch, user, pw, 'REGISTER', `sip:${D}`),
    }),
    opts.s,
  );
}

const api = (e: string, p: Record<string, string>, s = LOCAL) => t.srv.gateway.handle(apiReq(e, p, s));

test('REGISTER: 401 with MD5 and SHA-256 challenges, then 200 listing the binding; status becomes 2', async () => {
  const first = await run(
    sipRequest('REGISTER', `sip:${D}`, {
      From: `<sip:alice@${D}>;tag=1`,
      To: `<sip:alice@${D}>`,
      Contact: '<sip:alice@10.1.1.1>',
    }),
  );
  assert.equal(first.last.status, 401);
  const ch = first.last.headers.filter((h) => h.name === 'WWW-Authenticate').map((h) => h.value);
  assert.equal(ch.length, 2);
  assert.match(ch[0]!, /algorithm=MD5/);
  assert.match(ch[1]!, /algorithm=SHA-256/);
  assert.equal((await api('verifyuser', { userusername: 'alice' })).text, '1');
  const tx = await register('alice', 'alicepw', { cseq: 2 }); // answers the SHA-256 challenge
  assert.equal(tx.last.status, 200);
  assert.match(header(tx.last, 'Contact')!, /^<sip:alice@10\.1\.1\.1:5070>;expires=600$/);
  const v = await api('verifyuser', { userusername: 'alice' });
  assert.equal(v.text, '2');
  assert.equal((await api('verifyuser', { userusername: 'nobody' })).text, '0');
  const ep = await api('endpoints', {});
  assert.ok(
    ep.rows!.some(
      (r) =>
        r.user === 'alice' &&
        r.contact === 'sip:alice@10.1.1.1:5070' &&
        r.transport === 'udp' &&
        r.source === '127.0.0.1:5070' &&
        r.user_agent === 'test-ua',
    ),
  );
});

test('REGISTER: too brief → 423 Min-Expires; too long is capped; Expires 0 and Contact * remove', async () => {
  const brief = await register('bob', 'bobpw', { expires: 10 });
  assert.equal(brief.last.status, 423);
  assert.equal(header(brief.last, 'Min-Expires'), '60');
  const long = await register('bob', 'bobpw', { expires: 999999, callId: 'b2' });
  assert.equal(long.last.status, 200);
  assert.match(header(long.last, 'Contact')!, /;expires=3600$/);
  await register('bob', 'bobpw', { contact: '<sip:bob@10.9.9.9>', callId: 'b3' });
  assert.equal(sip.location.lookup('bob').length, 2);
  const one = await register('bob', 'bobpw', { contact: '<sip:bob@10.9.9.9>', expires: 0, callId: 'b3', cseq: 5 });
  assert.equal(one.last.status, 200);
  assert.equal(sip.location.lookup('bob').length, 1);
  const star = await register('bob', 'bobpw', { contact: '*', expires: 0, callId: 'b4' });
  assert.equal(star.last.status, 200);
  assert.equal(header(star.last, 'Contact'), undefined);
  assert.equal(sip.location.isOnline('bob'), false);
  const starBad = await register('bob', 'bobpw', { contact: '*', expires: 60, callId: 'b5' });
  assert.equal(starBad.last.status, 400);
});

test("REGISTER for another user's AOR is forbidden", async () => {
  const first = await run(
    sipRequest('REGISTER', `sip:${D}`, {
      From: `<sip:alice@${D}>;tag=1`,
      To: `<sip:bob@${D}>`,
      Contact: '<sip:x@10.0.0.1>',
    }),
  );
  const ch = header(first.last, 'WWW-Authenticate')!;
  const tx = await run(
    sipRequest('REGISTER', `sip:${D}`, {
      From: `<sip:alice@${D}>;tag=1`,
      To: `<sip:bob@${D}>`,
      Contact: '<sip:x@10.0.0.1>',
      Authorization: authorize(ch, 'alice', 'alicepw', 'REGISTER', `sip:${D}`),
    }),
  );
  assert.equal(tx.last.status, 403);
});

test('wrong password and unknown user: the same 403; failures from one address lead to a ban, then silence', async () => {
  const s = source('198.51.100.20');
  const wrong = await register('carol', 'WRONG', { s });
  const unknown = await register('nosuch', 'x', { s });
  assert.equal(wrong.last.status, 403);
  assert.equal(unknown.last.status, 403);
  assert.equal(wrong.last.reason, unknown.last.reason);
  assert.equal(t.srv.services.bans.isBanned('198.51.100.20'), false);
  await register('carol', 'WRONG2', { s });
  assert.equal(t.srv.services.bans.isBanned('198.51.100.20'), true);
  const after = await run(sipRequest('OPTIONS', `sip:${D}`, { From: `<sip:x@${D}>;tag=1`, To: `<sip:${D}>` }), s);
  assert.equal(after.responses.length, 0, 'a banned address gets no answer');
  const list = await api('bannedlist', {});
  assert.ok(list.rows!.some((r) => r.ip === '198.51.100.20' && /SIP/.test(String(r.reason))));
  assert.ok((await api('delbanned', { ip: '198.51.100.20' })).ok);
});

test('a replayed Authorization (same nonce and nc) is refused', async () => {
  const h = {
    From: `<sip:carol@${D}>;tag=1`,
    To: `<sip:carol@${D}>`,
    Contact: '<sip:carol@10.2.2.2>',
    'Call-ID': 'replay',
  };
  const first = await run(sipRequest('REGISTER', `sip:${D}`, { ...h, CSeq: '1 REGISTER' }));
  const auth = authorize(header(first.last, 'WWW-Authenticate')!, 'carol', 'carolpw', 'REGISTER', `sip:${D}`);
  assert.equal(
    (await run(sipRequest('REGISTER', `sip:${D}`, { ...h, CSeq: '2 REGISTER', Authorization: auth }))).last.status,
    200,
  );
  assert.equal(
    (await run(sipRequest('REGISTER', `sip:${D}`, { ...h, CSeq: '3 REGISTER', Authorization: auth }))).last.status,
    403,
  );
});

test('OPTIONS: 200 with Allow/Accept/Supported-type capability headers, no authentication', async () => {
  const tx = await run(sipRequest('OPTIONS', `sip:${D}`, { From: `<sip:x@${D}>;tag=1`, To: `<sip:${D}>` }));
  assert.equal(tx.last.status, 200);
  assert.match(header(tx.last, 'Allow')!, /REGISTER.*MESSAGE.*SUBSCRIBE/);
  assert.match(header(tx.last, 'Accept')!, /application\/pidf\+xml/);
  assert.equal(header(tx.last, 'Allow-Events'), 'presence');
});

test('unknown methods: 501 with Allow; INVITE not handled yet → 405', async () => {
  const tx = await run(sipRequest('FOO', `sip:${D}`, { From: `<sip:x@${D}>;tag=1`, To: `<sip:${D}>` }));
  assert.equal(tx.last.status, 501);
  const inv = await run(
    sipRequest('INVITE', `sip:bob@${D}`, {
      From: `<sip:x@${D}>;tag=1`,
      To: `<sip:bob@${D}>`,
      Contact: '<sip:x@1.2.3.4>',
    }),
  );
  assert.equal(inv.last.status, 405);
});

test('MESSAGE: 407 challenge, delivered to every registered device of an online user (200)', async () => {
  await register('bob', 'bobpw', { callId: 'm1' });
  stack.sent = [];
  stack.answer = () => 200;
  const h = { From: `<sip:alice@${D}>;tag=m`, To: `<sip:bob@${D}>`, 'Content-Type': 'text/plain', 'Call-ID': 'msg1' };
  const first = await run(sipRequest('MESSAGE', `sip:bob@${D}`, { ...h, CSeq: '1 MESSAGE' }, 'hello bob'));
  assert.equal(first.last.status, 407);
  const ch = header(first.last, 'Proxy-Authenticate')!;
  const tx = await run(
    sipRequest(
      'MESSAGE',
      `sip:bob@${D}`,
      { ...h, CSeq: '2 MESSAGE', 'Proxy-Authorization': authorize(ch, 'alice', 'alicepw', 'MESSAGE', `sip:bob@${D}`) },
      'hello bob',
    ),
  );
  assert.equal(tx.last.status, 200);
  assert.equal(stack.sent.length, 1);
  const out = stack.sent[0]!;
  assert.equal(out.req.uri, 'sip:bob@10.1.1.1:5070');
  assert.equal(out.req.body.toString(), 'hello bob');
  assert.match(header(out.req, 'From')!, /<sip:alice@/);
  assert.deepEqual(out.target, { transport: 'udp', host: '127.0.0.1', port: 5070, connId: undefined });
});

test('MESSAGE to an unknown user: 404 (after authentication)', async () => {
  const h = { From: `<sip:alice@${D}>;tag=m`, To: `<sip:ghost@${D}>`, 'Content-Type': 'text/plain' };
  const first = await run(sipRequest('MESSAGE', `sip:ghost@${D}`, h, 'x'));
  const tx = await run(
    sipRequest(
      'MESSAGE',
      `sip:ghost@${D}`,
      {
        ...h,
        CSeq: '2 MESSAGE',
        'Proxy-Authorization': authorize(
          header(first.last, 'Proxy-Authenticate')!,
          'alice',
          'alicepw',
          'MESSAGE',
          `sip:ghost@${D}`,
        ),
      },
      'x',
    ),
  );
  assert.equal(tx.last.status, 404);
});

test('offline IM: stored (202), delivered on the next REGISTER after the 2xx, exactly once', async () => {
  const h = { From: `<sip:alice@${D}>;tag=m`, To: `<sip:carol@${D}>`, 'Content-Type': 'text/plain' };
  await register('carol', 'carolpw', { contact: '*', expires: 0, callId: 'c-off' });
  assert.equal(sip.location.isOnline('carol'), false);
  const first = await run(sipRequest('MESSAGE', `sip:carol@${D}`, h, 'while you were out'));
  const tx = await run(
    sipRequest(
      'MESSAGE',
      `sip:carol@${D}`,
      {
        ...h,
        CSeq: '2 MESSAGE',
        'Proxy-Authorization': authorize(
          header(first.last, 'Proxy-Authenticate')!,
          'alice',
          'alicepw',
          'MESSAGE',
          `sip:carol@${D}`,
        ),
      },
      'while you were out',
    ),
  );
  assert.equal(tx.last.status, 202);
  assert.equal(await sip.ims.pendingCount('carol'), 1);
  // the phone does not answer: the message stays pending
  stack.sent = [];
  stack.answer = (r) => (r.method === 'MESSAGE' ? null : 200);
  await register('carol', 'carolpw', { callId: 'c-on1' });
  await waitFor(() => stack.sent.length === 1);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(await sip.ims.pendingCount('carol'), 1);
  // next REGISTER: the phone answers 200 → delivered, marked once
  stack.sent = [];
  stack.answer = () => 200;
  await register('carol', 'carolpw', { callId: 'c-on2' });
  await waitFor(() => stack.sent.length === 1);
  assert.equal(stack.sent[0]!.req.body.toString(), 'while you were out');
  assert.ok(header(stack.sent[0]!.req, 'Date'));
  await waitFor(async () => (await sip.ims.pendingCount('carol')) === 0);
  stack.sent = [];
  await register('carol', 'carolpw', { callId: 'c-on3' });
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(stack.sent.length, 0, 'not delivered twice');
  const rows = await t.srv.services.storage.db
    .selectFrom('tb_imessages')
    .selectAll()
    .where('touser', '=', 'carol')
    .execute();
  assert.equal(rows.length, 1);
  assert.ok(rows[0]!.delivered_at);
});

test('presence_set returns offline messages once (XOFFMESSAGE) and sendim stores for offline users', async () => {
  const remote = apiSrc('203.0.113.40');
  const cred = (u: string, p: string) => ({ authkey: 'test-api-key-123', authid: u, authpwd: p });
  assert.equal(sip.location.isOnline('agent1'), false);
  const s = await api('sendim', { ...cred('alice', 'alicepw'), bnum: 'agent1', txt: 'first' }, remote);
  assert.equal(s.ok, true, s.text);
  assert.match(s.text, /1 stored for offline users/);
  await api('sendim', { ...cred('bob', 'bobpw'), bnum: 'agent1', txt: 'second' }, remote);
  const p = await api('presence_set', { ...cred('agent1', 'agentpw'), pstatus: 'Away', ptype: '0' }, remote);
  assert.equal(p.ok, true, p.text);
  assert.equal(p.text, 'presence set to Away XOFFMESSAGE:alice:firstXOFFMESSAGE:bob:secondXOFFMESSAGE:');
  const again = await api('presence_set', { ...cred('agent1', 'agentpw'), pstatus: 'Away', ptype: '1' }, remote);
  assert.equal(again.text, 'presence set to Away');
  const g = await api('presence_get', { ...cred('alice', 'alicepw'), userlist: 'agent1,alice,ghost' }, remote);
  assert.equal(g.text, 'puserlist: agent1:Away,alice:online,ghost:unknown');
  const bad = await api('sendim', { ...cred('alice', 'alicepw'), bnum: 'ghost', txt: 'x' }, remote);
  assert.equal(bad.ok, false);
  assert.match(bad.text, /no such user: ghost/);
  const empty = await api('sendim', { ...cred('alice', 'alicepw'), bnum: 'bob' }, remote);
  assert.match(empty.text, /needs txt=/);
});

test('status / verifyuser levels; sendamsg, reguser and endpoints are admin-only (level 6)', async () => {
  const remote = apiSrc('203.0.113.41');
  const cred = { authkey: 'test-api-key-123', authid: 'alice', authpwd: 'alicepw' };
  const st = await api('status', cred, remote);
  assert.equal(st.ok, true, st.text);
  assert.equal(st.text, '2');
  for (const e of ['endpoints', 'reguser', 'sendamsg']) {
    const r = await api(e, { ...cred, usr: 'alice', agentid: 'all', message: 'hi' }, remote);
    assert.equal(r.ok, false, `${e} must be denied to an end user`);
  }
  const reg = await api('reguser', { usr: 'alice' });
  assert.equal(reg.ok, true);
  assert.equal(reg.text, 'alice: 1 registration(s)');
  const none = await api('reguser', { usr: 'carol2' });
  assert.equal(none.text, 'carol2 is not registered');
  stack.answer = () => 200;
  const am = await api('sendamsg', { agentid: 'all', message: 'team meeting' });
  assert.equal(am.ok, true, am.text);
  assert.match(am.text, /sent to 1 agent/);
  const notAgent = await api('sendamsg', { agentid: 'bob', message: 'x' });
  assert.match(notAgent.text, /not an agent/);
});

test('commands answer an ERROR when SIP is disabled', async () => {
  const svc = t.srv.services as unknown as { sip?: SipServer };
  svc.sip = undefined;
  try {
    const r = await api('verifyuser', { userusername: 'alice' });
    assert.equal(r.ok, false);
    assert.equal(r.text, 'the SIP stack is disabled (usesip=false)');
  } finally {
    svc.sip = sip;
  }
});

test('PUBLISH (ETag, refresh, conditional) and SUBSCRIBE → 200 + NOTIFY with PIDF, NOTIFY on change, unsubscribe', async () => {
  stack.sent = [];
  stack.answer = () => 200;
  // SUBSCRIBE from alice to bob's presence
  const sh = {
    From: `<sip:alice@${D}>;tag=sa`,
    To: `<sip:bob@${D}>`,
    Event: 'presence',
    Accept: 'application/pidf+xml',
    Contact: '<sip:alice@10.1.1.1:5070>',
    Expires: '600',
    'Call-ID': 'sub1',
  };
  const s1 = await run(sipRequest('SUBSCRIBE', `sip:bob@${D}`, { ...sh, CSeq: '1 SUBSCRIBE' }));
  assert.equal(s1.last.status, 407);
  const sch = header(s1.last, 'Proxy-Authenticate')!;
  const s2 = await run(
    sipRequest('SUBSCRIBE', `sip:bob@${D}`, {
      ...sh,
      CSeq: '2 SUBSCRIBE',
      'Proxy-Authorization': authorize(sch, 'alice', 'alicepw', 'SUBSCRIBE', `sip:bob@${D}`),
    }),
  );
  assert.equal(s2.last.status, 200);
  assert.equal(header(s2.last, 'Expires'), '600');
  const toTag = /tag=([^;]+)/.exec(header(s2.last, 'To')!)![1]!;
  await waitFor(() => stack.sent.some((x) => x.req.method === 'NOTIFY'));
  const n1 = stack.sent.find((x) => x.req.method === 'NOTIFY')!;
  assert.equal(n1.req.uri, 'sip:alice@10.1.1.1:5070');
  assert.match(header(n1.req, 'Subscription-State')!, /^active;expires=(600|599)$/);
  assert.match(header(n1.req, 'From')!, new RegExp(`tag=${toTag}`));
  assert.match(header(n1.req, 'To')!, /tag=sa/);
  assert.match(n1.req.body.toString(), /<basic>open<\/basic>/);
  // PUBLISH by bob: 407, then 200 with SIP-ETag; watchers get a NOTIFY with the note
  stack.sent = [];
  const pidf =
    '<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bob@x"><tuple id="a"><status><basic>open</basic></status><note>In a meeting</note></tuple></presence>';
  const ph = {
    From: `<sip:bob@${D}>;tag=pb`,
    To: `<sip:bob@${D}>`,
    Event: 'presence',
    Expires: '600',
    'Content-Type': 'application/pidf+xml',
    'Call-ID': 'pub1',
  };
  const p1 = await run(sipRequest('PUBLISH', `sip:bob@${D}`, { ...ph, CSeq: '1 PUBLISH' }, pidf));
  assert.equal(p1.last.status, 407);
  const pch = header(p1.last, 'Proxy-Authenticate')!;
  const p2 = await run(
    sipRequest(
      'PUBLISH',
      `sip:bob@${D}`,
      { ...ph, CSeq: '2 PUBLISH', 'Proxy-Authorization': authorize(pch, 'bob', 'bobpw', 'PUBLISH', `sip:bob@${D}`) },
      pidf,
    ),
  );
  assert.equal(p2.last.status, 200);
  const etag = header(p2.last, 'SIP-ETag')!;
  assert.ok(etag);
  await waitFor(() => stack.sent.some((x) => x.req.method === 'NOTIFY' && /In a meeting/.test(x.req.body.toString())));
  assert.equal((await api('presence_get', { userusername: 'bob' })).text, 'puserlist: bob:In a meeting');
  const row = await t.srv.services.storage.db
    .selectFrom('tb_presence')
    .innerJoin('tb_users', 'tb_users.id', 'tb_presence.userid')
    .select(['status', 'pidf'])
    .where('username', '=', 'bob')
    .executeTakeFirst();
  assert.equal(row?.status, 'In a meeting');
  // conditional refresh: wrong ETag → 412; right ETag → 200 with a new one
  const p3 = await run(
    sipRequest('PUBLISH', `sip:bob@${D}`, {
      ...ph,
      CSeq: '3 PUBLISH',
      'SIP-If-Match': 'nope',
      'Proxy-Authorization': authorize(pch, 'bob', 'bobpw', 'PUBLISH', `sip:bob@${D}`, 2),
    }),
  );
  assert.equal(p3.last.status, 412);
  const p4 = await run(
    sipRequest('PUBLISH', `sip:bob@${D}`, {
      ...ph,
      CSeq: '4 PUBLISH',
      'SIP-If-Match': etag,
      'Proxy-Authorization': authorize(pch, 'bob', 'bobpw', 'PUBLISH', `sip:bob@${D}`, 3),
    }),
  );
  assert.equal(p4.last.status, 200);
  assert.notEqual(header(p4.last, 'SIP-ETag'), etag);
  // bad event and bad body
  const ev = await run(sipRequest('PUBLISH', `sip:bob@${D}`, { ...ph, Event: 'dialog' }, pidf));
  assert.equal(ev.last.status, 489);
  const badBody = await run(
    sipRequest(
      'PUBLISH',
      `sip:bob@${D}`,
      { ...ph, CSeq: '5 PUBLISH', 'Proxy-Authorization': authorize(pch, 'bob', 'bobpw', 'PUBLISH', `sip:bob@${D}`, 4) },
      '<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple><status><basic>wat</basic></status></tuple></presence>',
    ),
  );
  assert.equal(badBody.last.status, 400);
  // registration change → NOTIFY closed
  stack.sent = [];
  await register('bob', 'bobpw', { contact: '*', expires: 0, callId: 'bob-off' });
  await waitFor(() => stack.sent.some((x) => x.req.method === 'NOTIFY'));
  // refresh in dialog and unsubscribe
  const inDialog = { ...sh, To: `<sip:bob@${D}>;tag=${toTag}` };
  const r1 = await run(
    sipRequest('SUBSCRIBE', `sip:bob@${D}`, {
      ...inDialog,
      CSeq: '3 SUBSCRIBE',
      Expires: '0',
      'Proxy-Authorization': authorize(sch, 'alice', 'alicepw', 'SUBSCRIBE', `sip:bob@${D}`, 2),
    }),
  );
  assert.equal(r1.last.status, 200);
  await waitFor(() =>
    stack.sent.some((x) => x.req.method === 'NOTIFY' && /^terminated/.test(header(x.req, 'Subscription-State')!)),
  );
  const r2 = await run(
    sipRequest('SUBSCRIBE', `sip:bob@${D}`, {
      ...inDialog,
      CSeq: '4 SUBSCRIBE',
      'Proxy-Authorization': authorize(sch, 'alice', 'alicepw', 'SUBSCRIBE', `sip:bob@${D}`, 3),
    }),
  );
  assert.equal(r2.last.status, 481);
  assert.equal(sip.stats().subscriptions, 0);
});

test('API over SIP: X-MVAPI in OPTIONS/MESSAGE answered 200 with the API answer; 403 when sipapi=false', async () => {
  const tx = await run(
    sipRequest('MESSAGE', `sip:${D}`, { From: `<sip:x@${D}>;tag=1`, To: `<sip:${D}>`, 'X-MVAPI': 'version' }),
  );
  assert.equal(tx.last.status, 200);
  assert.match(tx.last.body.toString(), /^OK: voxswitch /);
  const o = await run(
    sipRequest('OPTIONS', `sip:${D}`, { From: `<sip:x@${D}>;tag=1`, To: `<sip:${D}>`, 'X-MVAPI': 'version' }),
  );
  assert.match(o.last.body.toString(), /^OK: voxswitch/);
  t.srv.services.config.persist({ sipapi: 'false' });
  try {
    const off = await run(
      sipRequest('MESSAGE', `sip:${D}`, { From: `<sip:x@${D}>;tag=1`, To: `<sip:${D}>`, 'X-MVAPI': 'version' }),
    );
    assert.equal(off.last.status, 403);
  } finally {
    t.srv.services.config.persist({ sipapi: 'true' });
  }
});

test('setCallState: 3 calling / 4 speaking override online; null goes back', async () => {
  sip.setCallState('alice', 3);
  assert.equal(await sip.status('alice'), 3);
  sip.setCallState('alice', 4);
  assert.equal((await api('verifyuser', { userusername: 'alice' })).text, '4');
  sip.setCallState('alice', null);
  assert.equal(await sip.status('alice'), 2);
});

async function waitFor(cond: () => boolean | Promise<boolean>, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail('condition not met in time');
}

test('Server header: product name only, the exact version only with sipshowversion=true', async () => {
  const ask = () =>
    run(
      sipRequest('OPTIONS', `sip:${D}`, {
        From: `<sip:probe@${D}>;tag=v1`,
        To: `<sip:${D}>`,
        'Call-ID': `server-header-${Date.now()}-${Math.random()}`,
      }),
    );
  const hidden = await ask();
  assert.equal(header(hidden.last, 'Server'), 'voxswitch');
  t.srv.services.config.persist({ sipshowversion: 'true' });
  try {
    const shown = await ask();
    assert.equal(header(shown.last, 'Server'), `voxswitch/${t.srv.services.version}`);
  } finally {
    t.srv.services.config.persist({ sipshowversion: 'false' });
  }
});
