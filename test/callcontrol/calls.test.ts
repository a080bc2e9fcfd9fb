/**
 * callback / p2p end to end: a real server (SIP stack on UDP), the API through gateway.handle, and sipp UAS peers
 * (one per leg) on 127.0.0.1. Routing is a test router that sends each number to the sipp "gateways" of the test
 * and rates it with the real RatingService (the real RoutingService is exercised in test/routing).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, API_KEY, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { importTariffsCsv } from '../../src/domain/rating/csv.js';
import { CallControl } from '../../src/sip/callcontrol/controller.js';
import { TestRouter } from './router.js';
import { LiveCalls } from '../../src/domain/calls/index.js';
import { needTool } from '../helpers/tools.js';
import { freePort } from '../helpers/ports.js';
import type { Listening } from '../helpers/processes.js';
import { uas as sippUas } from './sipp.js';

const NO_SIPP = needTool('sipp');

let t: TestServer;
let tp: CallControl;
let work: string;
const REMOTE = src('203.0.113.7');
const LOCAL = src('127.0.0.1');
const as = (user: string, pw: string) => ({ authkey: API_KEY, authid: user, authpwd: pw });

const router = new TestRouter(() => t.srv.services);

before(async () => {
  t = await startTestServer({ defaultcountrycode: '1', apilimituser: '0', apilimitip: '0' });
  work = mkdtempSync(join(tmpdir(), 'voxswitch-3pcc-'));
  const h = (e: string, p: Record<string, string>) => t.srv.gateway.handle(req(e, p, LOCAL));
  for (const [u, credit] of [
    ['carol', '0.05'],
    ['dave', '10.00'],
    ['poor', '0'],
    ['erin', '5.00'],
  ] as const) {
    const r = await h('newuseri', { u_username: u, u_password: `${u}pw`, u_credit: credit, u_currency: 'USD' });
    assert.ok(r.ok, r.text);
  }
  const csv = 'prefix,destination,price,connectfee,minduration,increment,currency\n1555,Test,0.60,0,1,1,USD\n';
  assert.deepEqual((await importTariffsCsv(t.srv.services.storage.db, csv)).errors, []);
  await t.srv.services.rating.load();
  const sip = t.srv.services.sip!;
  tp = new CallControl({
    services: t.srv.services,
    sip,
    live: t.srv.services.liveCalls,
    routing: router,
    options: { bRingMs: 8000, aRingMs: 8000 },
  });
  t.srv.services.callControl = tp; // the API commands use this one
});
after(async () => {
  await tp?.stop();
  await t?.stop();
  rmSync(work, { recursive: true, force: true });
});

const uas = (scenario: string, port?: number): Promise<Listening> => sippUas(work, scenario, port);

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function cdrs(callid: string) {
  return t.srv.services.cdrs.byCallId(callid);
}

async function waitEnded(callid: string, ms = 15000): Promise<void> {
  const until = Date.now() + ms;
  while (tp.get(callid) && Date.now() < until) await settle(50);
  assert.equal(tp.get(callid), undefined, 'the call ended');
}

async function credit(username: string): Promise<number> {
  const u = await t.srv.services.users.byUsername(username);
  return (await t.srv.services.ledger.balance(u!.id))!.credit;
}

test(
  'p2p: bridges two sipp UAS (flow I: A offer → B, B answer → ACK A), cut at maxduration, both legs billed once',
  { skip: NO_SIPP },
  async () => {
    const a = await uas('a_bridged.xml');
    const b = await uas('b_bridged.xml');
    const [pa, pb] = [a.port, b.port];
    router.routes.set('+15550001', [{ name: 'gwA', port: pa }]);
    router.routes.set('+15550002', [{ name: 'gwB', port: pb }]);
    const before = await credit('carol');
    assert.equal(before, 50_000);
    const r = await t.srv.gateway.handle(
      req('p2p', { ...as('carol', 'carolpw'), bnum: '+15550001', cnum: '+15550002' }, REMOTE),
    );
    assert.equal(r.ok, true, r.text);
    const callid = String(r.fields?.callid);
    assert.match(callid, /^3pcc-[0-9a-f]{20}$/);
    assert.match(r.text, /^p2p 3pcc-[0-9a-f]+ started: calling 15550001, then 15550002$/);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(ra.code, 0, `sipp A: ${ra.out}`);
    assert.equal(rb.code, 0, `sipp B: ${rb.out}`);
    await waitEnded(callid);
    const rows = await cdrs(callid);
    assert.deepEqual(
      rows.map((c) => c.leg),
      ['a', 'b'],
    );
    const [ca, cb] = rows as [(typeof rows)[0], (typeof rows)[0]];
    assert.equal(ca.callee, '15550001');
    assert.equal(cb.callee, '15550002');
    assert.ok(ca.connect_at! <= cb.connect_at!, 'A answered first');
    // 0.01/s per leg, 0.05 credit, A up ≤ 1 s before B: the bridge gets 2 s
    assert.ok(cb.duration >= 1 && cb.duration <= 3, `B duration ${cb.duration}`);
    assert.ok(ca.duration >= cb.duration, `A ${ca.duration} ≥ B ${cb.duration}`);
    assert.equal(cb.reason, 'maxduration reached');
    const spent = ca.cost + cb.cost;
    assert.ok(spent > 0 && spent <= 50_000, `spent ${spent}`);
    assert.equal(await credit('carol'), before - spent, 'the balance lost exactly the two CDR costs');
    const led = await t.srv.services.storage.db
      .selectFrom('tb_ledger')
      .select(['amount', 'ref'])
      .where('ref', 'like', `%${callid}%`)
      .execute();
    assert.equal(led.length, 2);
    assert.equal(
      led.reduce((s, l) => s + Number(l.amount), 0),
      -spent,
    );
    const live = await t.srv.services.storage.db
      .selectFrom('tb_livecalls')
      .select('callid')
      .where('callid', 'like', `${callid}%`)
      .execute();
    assert.equal(live.length, 0, 'no live call row left');
    // recording again charges nothing
    const again = await t.srv.services.cdrs.recordCall({
      callid,
      leg: 'b',
      userId: cb.userid,
      caller: '',
      callee: '15550002',
      startAt: cb.start_at,
      connectAt: cb.connect_at,
      endAt: cb.end_at,
      duration: cb.duration,
    });
    assert.equal(again.created, false);
    assert.equal(again.charged, 0);
    // its progress, by the callid the answer gave: every step in order, completed
    const st = await t.srv.gateway.handle(req('callstatus', { ...as('carol', 'carolpw'), callid }, REMOTE));
    assert.equal(st.ok, true, st.text);
    assert.equal(st.fields?.state, 'completed');
    assert.equal(st.fields?.cause, 'maxduration reached');
    assert.deepEqual(
      (st.rows ?? []).map((h) => `${h.state}${h.leg ? `/${h.leg}` : ''}`),
      ['initiated', 'ringing/a', 'a-answered/a', 'ringing/b', 'answered', 'completed'],
    );
    assert.ok(String(st.fields?.answered) <= String(st.fields?.ended));
    // another account is not told whether the call exists
    const other = await t.srv.gateway.handle(req('callstatus', { ...as('dave', 'davepw'), callid }, REMOTE));
    assert.equal(other.ok, false);
    assert.match(other.text, /^callstatus: no call/);
  },
);

test(
  'p2p: a hold re-INVITE of one party reaches the other and its answer comes back; a DTMF INFO is passed on',
  { skip: NO_SIPP },
  async () => {
    const a = await uas('a_holds.xml');
    const b = await uas('b_held.xml');
    router.routes.set('+15550031', [{ name: 'gwHoldA', port: a.port }]);
    router.routes.set('+15550032', [{ name: 'gwHoldB', port: b.port }]);
    const r = await t.srv.gateway.handle(
      req('p2p', { ...as('dave', 'davepw'), bnum: '+15550031', cnum: '+15550032' }, REMOTE),
    );
    assert.equal(r.ok, true, r.text);
    const callid = String(r.fields?.callid);
    // A's sipp checks that B's a=recvonly answer came back to its re-INVITE; B's that the a=sendonly offer and the
    // INFO (Signal=5) reached it
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(ra.code, 0, `sipp A: ${ra.out}`);
    assert.equal(rb.code, 0, `sipp B: ${rb.out}`);
    await waitEnded(callid);
    const rows = await cdrs(callid);
    assert.equal(rows.length, 2);
    assert.ok(
      rows.every((c) => c.reason === 'A hung up'),
      JSON.stringify(rows.map((c) => c.reason)),
    );
  },
);

test(
  'callback: failover from a 503 gateway to the next for A; B busy → A answered, hung up; CDRs say why',
  { skip: NO_SIPP },
  async () => {
    const g1 = await uas('refuse_503.xml');
    const g2 = await uas('a_plain.xml');
    const g3 = await uas('refuse_busy.xml');
    const [p1, p2, p3] = [g1.port, g2.port, g3.port];
    router.routes.set('+15550011', [
      { name: 'gw503', port: p1 },
      { name: 'gwA2', port: p2 },
    ]);
    router.routes.set('+15550012', [{ name: 'gwBusy', port: p3 }]);
    const before = await credit('dave');
    const r = await t.srv.gateway.handle(
      req('callback', { ...as('dave', 'davepw'), num: '+15550011', bnum: '+15550012' }, REMOTE),
    );
    assert.equal(r.ok, true, r.text);
    const callid = String(r.fields?.callid);
    for (const [name, g] of [
      ['503', g1],
      ['A', g2],
      ['busy', g3],
    ] as const) {
      const x = await g.done;
      assert.equal(x.code, 0, `sipp ${name}: ${x.out}`);
    }
    await waitEnded(callid);
    const rows = await cdrs(callid);
    assert.deepEqual(
      rows.map((c) => c.leg),
      ['a', 'b'],
    );
    const [ca, cb] = rows as [(typeof rows)[0], (typeof rows)[0]];
    assert.equal(ca.route, 'gw:gw503,gwA2');
    assert.notEqual(ca.connect_at, null, 'A (second gateway) answered');
    assert.equal(cb.connect_at, null);
    assert.equal(cb.duration, 0);
    assert.equal(cb.cost, 0);
    assert.match(cb.reason, /gwBusy: 486 Busy Here/);
    assert.match(ca.reason, /B leg gwBusy: 486 Busy Here/);
    assert.equal(await credit('dave'), before - ca.cost);
    const st = await t.srv.gateway.handle(req('callstatus', { ...as('dave', 'davepw'), callid }, REMOTE));
    assert.equal(st.ok, true, st.text);
    assert.equal(st.text, `${callid} busy (leg b: 486)`);
    assert.equal(st.fields?.sip_status, 486);
    assert.equal(st.fields?.a_status, 200, 'leg a answered (on the gateway it failed over to)');
  },
);

test(
  'a live bridged call is ended by LiveCalls.hangup (disccall): BYE to both parties, CDRs "disconnected by admin"',
  { skip: NO_SIPP },
  async () => {
    const a = await uas('a_bridged.xml');
    const b = await uas('b_bridged.xml');
    const [pa, pb] = [a.port, b.port];
    router.routes.set('+15550021', [{ name: 'gwA', port: pa }]);
    router.routes.set('+15550022', [{ name: 'gwB', port: pb }]);
    const r = await t.srv.gateway.handle(
      req('p2p', { ...as('erin', 'erinpw'), bnum: '+15550021', cnum: '+15550022' }, REMOTE),
    );
    assert.equal(r.ok, true, r.text);
    const callid = String(r.fields?.callid);
    const until = Date.now() + 8000;
    while (tp.get(callid)?.state !== 'connected' && Date.now() < until) await settle(50);
    assert.equal(tp.get(callid)?.state, 'connected');
    assert.equal(tp.list().find((c) => c.callid === callid)?.b_state, 'confirmed');
    assert.deepEqual(
      tp.live
        .find(callid)
        .map((c) => c.leg)
        .sort(),
      ['a', 'b'],
    );
    // crash safety: both legs are persisted, connected, under the keys LiveCalls.recover() closes
    const rowsLive = await t.srv.services.storage.db
      .selectFrom('tb_livecalls')
      .select(['callid', 'leg', 'state'])
      .where('callid', 'like', `${callid}/%`)
      .orderBy('leg')
      .execute();
    assert.deepEqual(
      rowsLive.map((x) => [x.callid, x.leg, x.state]),
      [
        [`${callid}/a`, 'a', 'connected'],
        [`${callid}/b`, 'b', 'connected'],
      ],
    );
    await settle(1100);
    assert.equal(tp.live.hangup(callid), true);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(ra.code, 0, `sipp A: ${ra.out}`);
    assert.equal(rb.code, 0, `sipp B: ${rb.out}`);
    await waitEnded(callid);
    const rows = await cdrs(callid);
    assert.equal(rows.length, 2);
    for (const c of rows) {
      assert.equal(c.reason, 'disconnected by admin');
      assert.ok(c.duration >= 1, `${c.leg} ${c.duration}`);
    }
  },
);

test('callback / p2p refusals: clear ERRORs, CDRs with cost 0 for both legs, nothing charged', async () => {
  const h = (e: string, p: Record<string, string>) => t.srv.gateway.handle(req(e, p, REMOTE));
  // not authenticated: denied
  const anon = await h('p2p', { bnum: '+15550001', cnum: '+15550002' });
  assert.equal(anon.ok, false);
  // an end user may not bill someone else
  const other = await h('p2p', { ...as('erin', 'erinpw'), username: 'dave', bnum: '+15550001', cnum: '+15550002' });
  assert.equal(other.ok, false);
  assert.match(other.text, /you may only place calls for your own account/);
  const missing = await h('p2p', { ...as('erin', 'erinpw'), bnum: '+15550001' });
  assert.equal(missing.ok, false);
  assert.match(missing.text, /bnum \(the first number\) and cnum \(the second number\) are needed/);
  const same = await h('p2p', { ...as('erin', 'erinpw'), bnum: '+15550001', cnum: '+15550001' });
  assert.match(same.text, /the same number/);
  const nob = await h('callback', { ...as('erin', 'erinpw'), num: '+15550001' });
  assert.equal(nob.ok, false);
  assert.match(nob.text, /callback: bnum \(the destination to connect you to\) is missing/);
  const nonum = await h('callback', { ...as('erin', 'erinpw'), bnum: '+15550001' });
  assert.match(nonum.text, /no number to reach you/);
  // unknown destination: refused before any INVITE, both legs on record with the reason (the first number has a
  // route of its own here, whatever the tests before left in the router)
  router.routes.set('+15550001', [{ name: 'gwX', port: 9 }]);
  const before = await credit('erin');
  const unknown = await h('p2p', { ...as('erin', 'erinpw'), bnum: '+15550001', cnum: '+19990000' });
  assert.equal(unknown.ok, false);
  assert.match(unknown.text, /^p2p: \+19990000: no route to \+19990000 \(404\)$/);
  // no credit
  router.routes.set('+15550031', [{ name: 'gwX', port: 9 }]);
  router.routes.set('+15550032', [{ name: 'gwY', port: 9 }]);
  const poor = await h('p2p', { ...as('poor', 'poorpw'), bnum: '+15550031', cnum: '+15550032' });
  assert.equal(poor.ok, false);
  assert.match(poor.text, /insufficient credit \(402\)/);
  const db = t.srv.services.storage.db;
  const poorId = (await t.srv.services.users.byUsername('poor'))!.id;
  const poorCdrs = await db.selectFrom('tb_cdrs').selectAll().where('userid', '=', poorId).execute();
  assert.deepEqual(poorCdrs.map((c) => c.leg).sort(), ['a', 'b']);
  assert.ok(poorCdrs.every((c) => Number(c.cost) === 0 && /insufficient credit/.test(c.reason)));
  assert.equal(await credit('erin'), before);
  // a callback number is used when no num is given (and no phone is registered)
  const erinId = (await t.srv.services.users.byUsername('erin'))!.id;
  await t.srv.services.numbers.addCallbackNumber(erinId, '+15550041');
  const viaCbn = await h('callback', { ...as('erin', 'erinpw'), bnum: '+15550042' });
  assert.equal(viaCbn.ok, false);
  assert.match(viaCbn.text, /15550041: no route to 15550041 \(404\)|no route/);
});

test('callback with the SIP stack disabled answers a clear ERROR', async () => {
  const off = await startTestServer({ usesip: 'false' });
  try {
    const r = await off.srv.gateway.handle(
      req('callback', { username: 'admin', num: '+15550001', bnum: '+15550002' }, LOCAL),
    );
    assert.equal(r.ok, false);
    assert.match(r.text, /the SIP stack is disabled \(usesip=false\)/);
  } finally {
    await off.stop();
  }
});

test(
  'a party that hangs up (BYE from A) ends the bridge: 200 to A, BYE to B, CDRs "A hung up"',
  { skip: NO_SIPP },
  async () => {
    const a = await uas('a_hangs_up.xml');
    const b = await uas('b_bridged.xml');
    const [pa, pb] = [a.port, b.port];
    router.routes.set('+15550051', [{ name: 'gwA', port: pa }]);
    router.routes.set('+15550052', [{ name: 'gwB', port: pb }]);
    const r = await t.srv.gateway.handle(
      req('p2p', { ...as('dave', 'davepw'), bnum: '+15550051', cnum: '+15550052' }, REMOTE),
    );
    assert.equal(r.ok, true, r.text);
    const callid = String(r.fields?.callid);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(ra.code, 0, `sipp A: ${ra.out}`);
    assert.equal(rb.code, 0, `sipp B: ${rb.out}`);
    await waitEnded(callid);
    const rows = await cdrs(callid);
    assert.deepEqual(
      rows.map((c) => [c.leg, c.reason]),
      [
        ['a', 'A hung up'],
        ['b', 'A hung up'],
      ],
    );
    assert.ok(rows.every((c) => c.duration >= 1 && c.cost > 0));
  },
);

/** REGISTERs `user` from 127.0.0.1:port with digest auth (a real UDP exchange), so the binding's source is that port. */
async function register(user: string, pw: string, port: number): Promise<void> {
  const sipPort = t.srv.services.listeners.find((l) => l.kind === 'sip udp')!.port;
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(port, '127.0.0.1', () => r()));
  const ask = (msg: string) =>
    new Promise<string>((res, rej) => {
      const timer = setTimeout(() => rej(new Error('no answer to REGISTER')), 3000);
      sock.once('message', (m) => {
        clearTimeout(timer);
        res(m.toString());
      });
      sock.send(msg, sipPort, '127.0.0.1');
    });
  const uri = `sip:127.0.0.1:${sipPort}`;
  const callId = randomBytes(6).toString('hex');
  const build = (cseq: number, auth = '') =>
    `REGISTER ${uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK${randomBytes(6).toString('hex')};rport\r\nMax-Forwards: 70\r\n` +
    `From: <sip:${user}@127.0.0.1>;tag=r${cseq}\r\nTo: <sip:${user}@127.0.0.1>\r\nCall-ID: ${callId}\r\nCSeq: ${cseq} REGISTER\r\n` +
    `Contact: <sip:${user}@127.0.0.1:${port}>;expires=300\r\n${auth}Content-Length: 0\r\n\r\n`;
  try {
    const ch = await ask(build(1));
    assert.match(ch, /^SIP\/2\.0 401 /);
    const realm = /realm="([^"]*)"/.exec(ch)![1]!;
    const nonce = /nonce="([^"]*)"/.exec(ch)![1]!;
    const md5 = (x: string) => createHash('md5').update(x).digest('hex');
    const qop = /qop="[^"]*auth/.test(ch);
    const cnonce = 'c0ffee';
    const ha1 = md5(`${user}:${realm}:${pw}`);
    const ha2 = md5(`REGISTER:${uri}`);
    const resp = qop ? md5(`${ha1}:${nonce}:00000001:${cnonce}:auth:${ha2}`) : md5(`${ha1}:${nonce}:${ha2}`);
    const auth = `Authorization: Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${resp}", algorithm=MD5${qop ? `, qop=auth, nc=00000001, cnonce="${cnonce}"` : ''}\r\n`;
    const ok = await ask(build(2, auth));
    assert.match(ok, /^SIP\/2\.0 200 /);
  } finally {
    await new Promise<void>((r) => sock.close(() => r()));
  }
}

test(
  "callback without num rings the user's registered phone (leg A on-net, free), then the destination; status 3 → 4 → 2",
  { skip: NO_SIPP },
  async () => {
    const pa = await freePort();
    await register('dave', 'davepw', pa);
    const sip = t.srv.services.sip!;
    assert.equal(await sip.status('dave'), 2);
    const a = await uas('a_bridged.xml', pa);
    const b = await uas('b_bridged.xml');
    router.routes.set('+15550062', [{ name: 'gwB', port: b.port }]);
    const before = await credit('dave');
    const r = await t.srv.gateway.handle(req('callback', { ...as('dave', 'davepw'), bnum: '+15550062' }, REMOTE));
    assert.equal(r.ok, true, r.text);
    assert.equal(r.fields?.anum, 'dave');
    const callid = String(r.fields?.callid);
    const until = Date.now() + 8000;
    while (tp.get(callid)?.state !== 'connected' && Date.now() < until) await settle(50);
    assert.equal(tp.get(callid)?.state, 'connected');
    assert.equal(await sip.status('dave'), 4, 'speaking while bridged');
    await settle(1100);
    assert.equal(await tp.hangup(callid, 'test hang-up'), true);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(ra.code, 0, `sipp A: ${ra.out}`);
    assert.equal(rb.code, 0, `sipp B: ${rb.out}`);
    await waitEnded(callid);
    assert.equal(await sip.status('dave'), 2, 'back to online');
    const rows = await cdrs(callid);
    assert.deepEqual(
      rows.map((c) => [c.leg, c.callee, c.route]),
      [
        ['a', 'dave', 'user:dave'],
        ['b', '15550062', 'gw:gwB'],
      ],
    );
    const [ca, cb] = rows as [(typeof rows)[0], (typeof rows)[0]];
    assert.equal(ca.cost, 0, 'the on-net leg is free');
    assert.equal(ca.reason, 'test hang-up');
    assert.ok(ca.duration >= 1);
    assert.ok(cb.cost > 0 && cb.duration >= 1);
    assert.equal(await credit('dave'), before - cb.cost);
  },
);

test(
  'crash recovery: a restarted process bills the legs of a live bridge from tb_livecalls; the normal end then charges nothing twice',
  { skip: NO_SIPP },
  async () => {
    const a = await uas('a_bridged.xml');
    const b = await uas('b_bridged.xml');
    const [pa, pb] = [a.port, b.port];
    router.routes.set('+15550071', [{ name: 'gwA', port: pa }]);
    router.routes.set('+15550072', [{ name: 'gwB', port: pb }]);
    const before = await credit('erin');
    const r = await t.srv.gateway.handle(
      req('p2p', { ...as('erin', 'erinpw'), bnum: '+15550071', cnum: '+15550072' }, REMOTE),
    );
    assert.equal(r.ok, true, r.text);
    const callid = String(r.fields?.callid);
    const until = Date.now() + 8000;
    while (tp.get(callid)?.state !== 'connected' && Date.now() < until) await settle(50);
    assert.equal(tp.get(callid)?.state, 'connected');
    await settle(2100);
    // what the next process would do at start: a fresh LiveCalls that knows nothing of this call
    const db = t.srv.services.storage.db;
    await db
      .updateTable('tb_livecalls')
      .set({ updated_at: Date.now() })
      .where('callid', 'like', `${callid}/%`)
      .execute(); // the heartbeat
    const rec = await new LiveCalls(t.srv.services).recover();
    assert.ok(rec.closed >= 2, `closed ${rec.closed}`);
    const recovered = await cdrs(callid);
    assert.deepEqual(
      recovered.map((c) => [c.leg, c.reason]),
      [
        ['a', 'recovered after restart'],
        ['b', 'recovered after restart'],
      ],
    );
    assert.ok(recovered.every((c) => c.duration >= 2 && c.cost > 0));
    const charged = recovered.reduce((x, c) => x + c.cost, 0);
    assert.equal(await credit('erin'), before - charged);
    // the call itself ends later: its CDRs are duplicates, nothing more is charged
    assert.equal(await tp.hangup(callid, 'late end'), true);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(ra.code, 0, `sipp A: ${ra.out}`);
    assert.equal(rb.code, 0, `sipp B: ${rb.out}`);
    await waitEnded(callid);
    assert.equal((await cdrs(callid)).length, 2);
    assert.equal(await credit('erin'), before - charged);
    const led = await db.selectFrom('tb_ledger').select('amount').where('ref', 'like', `%${callid}%`).execute();
    assert.equal(led.length, 2);
  },
);

test(
  'a gateway that asks for digest auth (401, qop=auth) gets the INVITE again with its credentials',
  { skip: NO_SIPP },
  async () => {
    const a = await uas('a_auth.xml');
    const b = await uas('b_bridged.xml');
    const [pa, pb] = [a.port, b.port];
    router.routes.set('+15550081', [{ name: 'gwAuth', port: pa, username: 'gw1', password: 'gw1secret' }]);
    router.routes.set('+15550082', [{ name: 'gwB', port: pb }]);
    const r = await t.srv.gateway.handle(
      req('p2p', { ...as('dave', 'davepw'), bnum: '+15550081', cnum: '+15550082' }, REMOTE),
    );
    assert.equal(r.ok, true, r.text);
    const callid = String(r.fields?.callid);
    const until = Date.now() + 8000;
    while (tp.get(callid)?.state !== 'connected' && Date.now() < until) await settle(50);
    assert.equal(tp.get(callid)?.state, 'connected', 'the authenticated INVITE was answered');
    assert.equal(await tp.hangup(callid, 'done'), true);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(ra.code, 0, `sipp A: ${ra.out}`);
    assert.equal(rb.code, 0, `sipp B: ${rb.out}`);
    await waitEnded(callid);
    const rows = await cdrs(callid);
    assert.notEqual(rows.find((c) => c.leg === 'a')?.connect_at, null);
  },
);

test(
  'a party that does not answer within the ring time is cancelled (CANCEL, 487, ACK); B is never called',
  { skip: NO_SIPP },
  async () => {
    const a = await uas('ring_cancel.xml');
    const pa = a.port;
    router.routes.set('+15550091', [
      { name: 'gwRing', port: pa },
      { name: 'gwNever', port: 9 },
    ]);
    router.routes.set('+15550092', [{ name: 'gwB', port: 9 }]);
    const sip = t.srv.services.sip!;
    const quick = new CallControl({
      services: t.srv.services,
      sip,
      live: t.srv.services.liveCalls,
      routing: router,
      options: { aRingMs: 1000, maxPerUser: 1 },
    });
    const dave = (await t.srv.services.users.byUsername('dave'))!;
    const call = await quick.start('p2p', dave, '+15550091', '+15550092');
    // one call per account in progress at most (maxPerUser 1 here)
    await assert.rejects(
      quick.start('p2p', dave, '+15550091', '+15550092'),
      /1 calls of this account are already in progress \(at most 1\)/,
    );
    const ra = await a.done;
    assert.equal(ra.code, 0, `sipp: ${ra.out}`);
    await call.ended;
    const rows = await cdrs(call.callid);
    assert.deepEqual(
      rows.map((c) => [c.leg, c.reason]),
      [
        ['a', 'gwRing: no answer within 1 s'],
        ['b', 'not placed: A leg gwRing: no answer within 1 s'],
      ],
    );
    assert.ok(rows.every((c) => c.cost === 0 && c.connect_at === null));
  },
);
