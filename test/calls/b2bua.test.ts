/**
 * Calls through the B2BUA with sipp as real peers (UDP, 127.0.0.1): user-to-user with digest (407) and SDP end
 * to end, status 3/4, one CDR; a call cut at maxduration; gateway failover (503 → next); disccall; forwarding.
 * Skipped with the reason printed when sipp is missing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { req as apiReq, src as apiSrc } from '../helpers/source.js';
import { API_KEY } from '../helpers/server.js';
import { UserType } from '../../src/domain/accounts/types.js';
import { skipWithout } from '../helpers/tools.js';
import {
  startCallEnv,
  uas,
  uac,
  uacCsv,
  freePort,
  registerAt,
  registerAlso,
  setRates,
  sleep,
  runTool,
  SIPP,
  SCEN,
  sippTrace,
  type CallEnv,
} from './helpers.js';

const LOCAL = apiSrc('127.0.0.1');
let env: CallEnv;
let work: string;
let alice: number;
let bob: number;
let carol: number;
let currency = 'USD';

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'voxswitch-calls-'));
  env = await startCallEnv({ noAnswerSeconds: 2 });
  const u = env.services.users;
  alice = (await u.create({ username: 'alice', password: 'alicepw' })).id;
  bob = (await u.create({ username: 'bob', password: 'bobpw' })).id;
  carol = (await u.create({ username: 'carol', password: 'carolpw' })).id;
  currency = (await env.services.ledger.balance(alice))!.currency;
  // 4900…: 60 units/min = 1 unit (1 000 000 micro) per second, 1/1 billing
  await setRates(env.services, currency, [
    { prefix: '4900', price: 60_000_000 },
    { prefix: '44', price: 600_000 },
  ]);
});
after(async () => {
  await env?.stop();
  rmSync(work, { recursive: true, force: true });
});

const cdrsOf = (userId: number) =>
  env.services.storage.db.selectFrom('tb_cdrs').selectAll().where('userid', '=', userId).orderBy('id').execute();
const liveRows = () => env.services.storage.db.selectFrom('tb_livecalls').selectAll().execute();
const api = (e: string, p: Record<string, string>, source = LOCAL) => env.t.srv.gateway.handle(apiReq(e, p, source));

async function waitFor<T>(f: () => Promise<T> | T, ok: (v: T) => boolean, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  let v = await f();
  while (!ok(v) && Date.now() < end) {
    await sleep(100);
    v = await f();
  }
  return v;
}

test('user to user: 407 digest, SDP end to end, status 4 while talking, one CDR (free on-net, "normal"), nothing left live', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const callee = await uas(work, 'uas_answer.xml');
  registerAt(env, 'bob', callee.port);
  const before = await cdrsOf(alice);
  const caller = uac(env, work, 'uac_auth.xml', uacCsv(work, 'u2u.csv', [['alice', 'alicepw', 'bob']]), 1, [
    '-d',
    '2000',
  ]);
  const st = await waitFor(
    () => env.sip.status('alice'),
    (s) => s === 4,
  );
  assert.equal(st, 4, 'alice speaking');
  assert.equal(await env.sip.status('bob'), 4, 'bob speaking');
  assert.equal((await liveRows()).length, 1, 'the call is persisted while it lives');
  const [a, b] = await Promise.all([caller, callee.done]);
  assert.equal(a.code, 0, 'caller sipp: ' + a.out.slice(-1500));
  assert.equal(b.code, 0, 'callee sipp: ' + b.out.slice(-1500));
  const cdrs = await waitFor(
    () => cdrsOf(alice),
    (r) => r.length > before.length,
  );
  const cdr = cdrs.at(-1)!;
  assert.equal(cdrs.length, before.length + 1, 'exactly one CDR');
  assert.equal(cdr.callee, 'bob');
  assert.equal(cdr.route, 'user:bob');
  assert.ok(cdr.duration >= 1 && cdr.duration <= 4, `duration ${cdr.duration}`);
  assert.equal(Number(cdr.cost), 0);
  assert.match(cdr.reason, /^normal/);
  assert.equal((await liveRows()).length, 0);
  assert.equal(await env.sip.status('alice'), 1, 'back to offline (not registered) after the call');
});

test('maxduration: price 1 unit/s, credit 3 units → the server cuts the call (BYE both legs) at 3 s and charges exactly 3 units', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  await env.services.ledger.post({ userId: alice, amount: 3_000_000, reason: 'test' });
  const gwTrace = join(work, 'cut-gw.msg');
  const callerTrace = join(work, 'cut-caller.msg');
  const callee = await uas(work, 'uas_answer.xml', ['-trace_msg', '-message_file', gwTrace]);
  env.router.gateways = [
    {
      id: 1,
      name: 'gwA',
      host: '127.0.0.1',
      port: callee.port,
      transport: 'udp',
      username: '',
      password: '',
      number: '',
    },
  ];
  const t0 = Date.now();
  const [a, b] = await Promise.all([
    uac(env, work, 'uac_auth_cut.xml', uacCsv(work, 'cut.csv', [['alice', 'alicepw', '4900123456']]), 1, [
      '-trace_msg',
      '-message_file',
      callerTrace,
    ]),
    callee.done,
  ]);
  assert.equal(a.code, 0, 'caller sipp got the BYE: ' + a.out.slice(-1500));
  assert.equal(b.code, 0, 'gateway sipp got the BYE: ' + b.out.slice(-1500));
  assert.ok(Date.now() - t0 < 10_000);
  // when the BYEs really arrived, on the peers' clocks: 3 s (± 1 s) after the gateway answered
  const answered = sippTrace(gwTrace).find((m) => m.dir === 'sent' && /^SIP\/2\.0 200 /.test(m.first));
  const byeAtGw = sippTrace(gwTrace).find((m) => m.dir === 'received' && m.first.startsWith('BYE '));
  const byeAtCaller = sippTrace(callerTrace).find((m) => m.dir === 'received' && m.first.startsWith('BYE '));
  assert.ok(answered && byeAtGw && byeAtCaller, 'the traces hold the 200 and both BYEs');
  for (const [leg, bye] of [
    ['gateway', byeAtGw],
    ['caller', byeAtCaller],
  ] as const) {
    const after = bye.at - answered.at;
    assert.ok(Math.abs(after - 3000) <= 1000, `BYE reached the ${leg} ${after} ms after the answer (maxduration 3 s)`);
  }
  const cdr = (
    await waitFor(
      () => cdrsOf(alice),
      (r) => r.some((x) => x.callee === '4900123456'),
    )
  ).find((x) => x.callee === '4900123456')!;
  assert.equal(cdr.duration, 3);
  assert.equal(Number(cdr.cost), 3_000_000);
  assert.equal(cdr.route, 'gw:gwA');
  assert.equal(cdr.reason, 'maxduration reached');
  assert.equal((await env.services.ledger.balance(alice))!.credit, 0);
  const debits = await env.services.storage.db
    .selectFrom('tb_ledger')
    .selectAll()
    .where('userid', '=', alice)
    .where('reason', '=', 'call')
    .execute();
  assert.equal(debits.length, 1, 'charged once');
  assert.equal(Number(debits[0]!.amount), -3_000_000);
});

test('no credit: the call is refused 402 with a CDR (cost 0, "insufficient credit") and nothing stays live', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  env.router.gateways = [
    {
      id: 1,
      name: 'gwA',
      host: '127.0.0.1',
      port: await freePort(),
      transport: 'udp',
      username: '',
      password: '',
      number: '',
    },
  ];
  const a = await uac(env, work, 'uac_auth.xml', uacCsv(work, 'nocredit.csv', [['alice', 'alicepw', '4900777']]));
  assert.notEqual(a.code, 0, 'the caller did not get a 200');
  assert.match(a.out + '', /402|unexpected|Aborting/i);
  const cdr = (await cdrsOf(alice)).find((x) => x.callee === '4900777');
  assert.ok(cdr, 'a CDR of the refusal');
  assert.equal(cdr!.reason, 'insufficient credit');
  assert.equal(Number(cdr!.cost), 0);
  assert.equal((await liveRows()).length, 0);
});

test('gateway failover: the first gateway answers 503, the second 200; billed on the second', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  await env.services.ledger.post({ userId: bob, amount: 50_000_000, reason: 'test' });
  const bad = await uas(work, 'uas_503.xml');
  const good = await uas(work, 'uas_answer.xml');
  const [g1, g2] = [bad.port, good.port];
  env.router.gateways = [
    { id: 1, name: 'gwBad', host: '127.0.0.1', port: g1, transport: 'udp', username: '', password: '', number: '' },
    { id: 2, name: 'gwGood', host: '127.0.0.1', port: g2, transport: 'udp', username: '', password: '', number: '' },
  ];
  const [a, b1, b2] = await Promise.all([
    uac(env, work, 'uac_auth.xml', uacCsv(work, 'fo.csv', [['bob', 'bobpw', '4411112222']]), 1, ['-d', '1000']),
    bad.done,
    good.done,
  ]);
  assert.equal(a.code, 0, 'caller: ' + a.out.slice(-1500));
  assert.equal(b1.code, 0, 'gateway 1 (503): ' + b1.out.slice(-1500));
  assert.equal(b2.code, 0, 'gateway 2 (200): ' + b2.out.slice(-1500));
  const cdr = (
    await waitFor(
      () => cdrsOf(bob),
      (r) => r.length > 0,
    )
  ).at(-1)!;
  assert.equal(cdr.route, 'gw:gwGood');
  assert.equal(cdr.callee, '4411112222');
  assert.ok(cdr.duration >= 1);
  // 0.6 units/min, 1/1: cost = ceil(600000 × d / 60) micro
  assert.equal(Number(cdr.cost), Math.ceil((600_000 * cdr.duration) / 60));
  assert.equal((await env.services.ledger.balance(bob))!.credit, 50_000_000 - Number(cdr.cost));
});

test('quickstat and disccall (level 6): a live call listed, then disconnected by the API with BYE to both legs; denied to a user', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const callee = await uas(work, 'uas_answer.xml');
  registerAt(env, 'carol', callee.port);
  const caller = uac(env, work, 'uac_auth_cut.xml', uacCsv(work, 'disc.csv', [['bob', 'bobpw', 'carol']]));
  await waitFor(
    () => env.sip.status('carol'),
    (s) => s === 4,
  );
  const q = await api('quickstat', {});
  assert.equal(q.ok, true, q.text);
  assert.equal(q.fields?.connected, 1);
  assert.equal(q.rows?.length, 1);
  const id = String(q.rows![0]!.callid);
  assert.equal(q.rows![0]!.caller, 'bob');
  // a plain user may not use either
  const remote = apiSrc('203.0.113.7');
  const denied = await api('quickstat', { authkey: API_KEY, authid: 'bob', authpwd: 'bobpw' }, remote);
  assert.equal(denied.ok, false);
  assert.match(denied.text, /not allowed for your user type/);
  const denied2 = await api('disccall', { authkey: API_KEY, authid: 'bob', authpwd: 'bobpw', dbcallid: id }, remote);
  assert.equal(denied2.ok, false);
  assert.match(denied2.text, /not allowed for your user type/);
  // an admin account (level 6) may, from a remote address
  if (!(await env.services.users.byUsername('opadmin')))
    await env.services.users.create({ username: 'opadmin', password: 'opadminpw1', type: UserType.admin });
  const allowed = await api('quickstat', { authkey: API_KEY, authid: 'opadmin', authpwd: 'opadminpw1' }, remote);
  assert.equal(allowed.ok, true, allowed.text);
  assert.equal(allowed.fields?.livecalls, 1);
  assert.equal(env.b2bua.live.list().length, 1, 'a denied disccall ends nothing');
  const missing = await api('disccall', { dbcallid: 'nope' });
  assert.equal(missing.ok, false);
  assert.match(missing.text, /no live call with id nope/);
  const d = await api('disccall', { dbcallid: id });
  assert.equal(d.ok, true, d.text);
  assert.equal(d.text, `call ${id} disconnected`);
  const [a, b] = await Promise.all([caller, callee.done]);
  assert.equal(a.code, 0, a.out.slice(-1500));
  assert.equal(b.code, 0, b.out.slice(-1500));
  const cdr = (
    await waitFor(
      () => cdrsOf(bob),
      (r) => r.some((x) => x.callid === id),
    )
  ).find((x) => x.callid === id)!;
  assert.equal(cdr.reason, 'disconnected by API (disccall)');
  const q2 = await api('quickstat', {});
  assert.equal(q2.fields?.livecalls, 0);
  assert.ok(Number(q2.fields?.answered) >= 1);
  assert.ok(Number(q2.fields?.asr) > 0);
});

test('forwarding: bob forwards always to carol; alice → bob rings carol and the call is recorded once', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  await env.services.numbers.setForward(bob, { always: 'carol' });
  const callee = await uas(work, 'uas_answer.xml');
  registerAt(env, 'carol', callee.port);
  env.sip.location.removeAll('bob', 'x', 99);
  const beforeN = (await cdrsOf(bob)).length;
  const [a, b] = await Promise.all([
    uac(env, work, 'uac_auth.xml', uacCsv(work, 'fwd.csv', [['alice', 'alicepw', 'bob']]), 1, ['-d', '1000']),
    callee.done,
  ]);
  assert.equal(a.code, 0, a.out.slice(-1500));
  assert.equal(b.code, 0, b.out.slice(-1500));
  const cdr = (
    await waitFor(
      () => cdrsOf(bob),
      (r) => r.length > beforeN,
    )
  ).at(-1)!;
  assert.equal(cdr.callee, 'carol', 'the forwarded leg, on the forwarding user (bob)');
  assert.equal(cdr.caller, 'alice');
  await env.services.numbers.setForward(bob, { always: '' });
});

test('CANCEL while ringing: 200 to the CANCEL, 487 to the INVITE, the callee is cancelled too; CDR unanswered, cost 0', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const callee = await uas(work, 'uas_ring.xml');
  registerAt(env, 'carol', callee.port);
  const n = (await cdrsOf(alice)).length;
  const [a, b] = await Promise.all([
    uac(env, work, 'uac_cancel.xml', uacCsv(work, 'cancel.csv', [['alice', 'alicepw', 'carol']])),
    callee.done,
  ]);
  assert.equal(a.code, 0, a.out.slice(-1500));
  assert.equal(b.code, 0, b.out.slice(-1500));
  const cdr = (
    await waitFor(
      () => cdrsOf(alice),
      (r) => r.length > n,
    )
  ).at(-1)!;
  assert.equal(cdr.callee, 'carol');
  assert.equal(cdr.duration, 0);
  assert.equal(cdr.reason, 'cancelled');
  assert.equal(Number(cdr.cost), 0);
  assert.equal(await env.sip.status('carol'), 2, 'carol back to online');
  assert.equal((await liveRows()).length, 0);
});

test('no-answer forwarding: carol rings 2 s without answering, then the call goes to bob (who answers)', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  await env.services.numbers.setForward(carol, { noanswer: 'bob' });
  const ringing = await uas(work, 'uas_ring.xml');
  const answering = await uas(work, 'uas_answer.xml');
  registerAt(env, 'carol', ringing.port);
  registerAt(env, 'bob', answering.port);
  const [a, r1, r2] = await Promise.all([
    uac(env, work, 'uac_auth.xml', uacCsv(work, 'na.csv', [['alice', 'alicepw', 'carol']]), 1, ['-d', '1000']),
    ringing.done,
    answering.done,
  ]);
  assert.equal(a.code, 0, a.out.slice(-1500));
  assert.equal(r1.code, 0, 'carol was cancelled: ' + r1.out.slice(-1500));
  assert.equal(r2.code, 0, 'bob answered: ' + r2.out.slice(-1500));
  const cdr = (
    await waitFor(
      () => cdrsOf(carol),
      (r) => r.some((x) => x.callee === 'bob'),
    )
  ).find((x) => x.callee === 'bob')!;
  assert.equal(cdr.caller, 'alice', 'the forwarded leg is recorded on carol (the forwarding user)');
  assert.ok(cdr.duration >= 1);
  await env.services.numbers.setForward(carol, { noanswer: '' });
});

test('unknown destination: 404 to the caller and a CDR with the reason', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const a = await uac(env, work, 'uac_auth.xml', uacCsv(work, 'nf.csv', [['alice', 'alicepw', 'nosuchuser']]));
  assert.notEqual(a.code, 0);
  const cdr = (await cdrsOf(alice)).find((x) => x.callee === 'nosuchuser');
  assert.ok(cdr);
  assert.match(cdr!.reason, /^404/);
  assert.equal(Number(cdr!.cost), 0);
});

test('busy forwarding: bob answers 486, his busy rule sends the call to carol (recorded on bob)', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  await env.services.numbers.setForward(bob, { busy: 'carol' });
  const busy = await uas(work, 'uas_busy.xml');
  const answering = await uas(work, 'uas_answer.xml');
  registerAt(env, 'bob', busy.port);
  registerAt(env, 'carol', answering.port);
  const n = (await cdrsOf(bob)).length;
  const [a, r1, r2] = await Promise.all([
    uac(env, work, 'uac_auth.xml', uacCsv(work, 'busy.csv', [['alice', 'alicepw', 'bob']]), 1, ['-d', '1000']),
    busy.done,
    answering.done,
  ]);
  assert.equal(a.code, 0, a.out.slice(-1500));
  assert.equal(r1.code, 0, 'bob was busy: ' + r1.out.slice(-1500));
  assert.equal(r2.code, 0, 'carol answered: ' + r2.out.slice(-1500));
  const rows = await waitFor(
    () => cdrsOf(bob),
    (r) => r.length > n,
  );
  const cdr = rows.at(-1)!;
  assert.equal(cdr.callee, 'carol');
  assert.equal(cdr.caller, 'alice');
  assert.ok(cdr.duration >= 1);
  await env.services.numbers.setForward(bob, { busy: '' });
});

test('re-INVITE passthrough: a hold offer (sendonly) reaches the callee, its recvonly answer reaches the caller', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const callee = await uas(work, 'uas_reinvite.xml');
  registerAt(env, 'carol', callee.port);
  const [a, b] = await Promise.all([
    uac(env, work, 'uac_reinvite.xml', uacCsv(work, 'reinv.csv', [['alice', 'alicepw', 'carol']]), 1, ['-d', '500']),
    callee.done,
  ]);
  assert.equal(a.code, 0, a.out.slice(-1500));
  assert.equal(b.code, 0, b.out.slice(-1500));
  assert.equal((await liveRows()).length, 0);
});

test('gateway failover on no answer: nothing listens on the first gateway, the second answers', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const dead = await freePort();
  const good = await uas(work, 'uas_answer.xml');
  const g2 = good.port;
  env.router.gateways = [
    { id: 1, name: 'gwDead', host: '127.0.0.1', port: dead, transport: 'udp', username: '', password: '', number: '' },
    { id: 2, name: 'gwAlive', host: '127.0.0.1', port: g2, transport: 'udp', username: '', password: '', number: '' },
  ];
  const n = (await cdrsOf(bob)).length;
  const [a, b] = await Promise.all([
    uac(env, work, 'uac_auth.xml', uacCsv(work, 'dead.csv', [['bob', 'bobpw', '4422223333']]), 1, ['-d', '500']),
    good.done,
  ]);
  assert.equal(a.code, 0, a.out.slice(-1500));
  assert.equal(b.code, 0, b.out.slice(-1500));
  const cdr = (
    await waitFor(
      () => cdrsOf(bob),
      (r) => r.length > n,
    )
  ).at(-1)!;
  assert.equal(cdr.route, 'gw:gwAlive');
});

test('parallel forking: carol has two phones; one answers, the other (ringing) is cancelled', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const ringing = await uas(work, 'uas_ring.xml');
  const answering = await uas(work, 'uas_answer.xml');
  registerAt(env, 'carol', ringing.port);
  registerAlso(env, 'carol', answering.port);
  assert.equal(env.sip.location.lookup('carol').length, 2);
  const n = (await cdrsOf(alice)).length;
  const [a, r1, r2] = await Promise.all([
    uac(env, work, 'uac_auth.xml', uacCsv(work, 'fork.csv', [['alice', 'alicepw', 'carol']]), 1, ['-d', '500']),
    ringing.done,
    answering.done,
  ]);
  assert.equal(a.code, 0, a.out.slice(-1500));
  assert.equal(r1.code, 0, 'the ringing phone got CANCEL: ' + r1.out.slice(-1500));
  assert.equal(r2.code, 0, 'the answering phone: ' + r2.out.slice(-1500));
  const rows = await waitFor(
    () => cdrsOf(alice),
    (r) => r.length > n,
  );
  assert.equal(rows.length, n + 1, 'one CDR for the forked call');
});

test('over TCP: caller and callee on TCP connections, the same call flow and one CDR', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  assert.ok(env.tcpPort, 'the SIP stack has a TCP listener');
  const callee = await uas(work, 'uas_answer.xml', ['-t', 't1']);
  registerAt(env, 'carol', callee.port, 'tcp');
  const n = (await cdrsOf(alice)).length;
  const caller = runTool(
    SIPP,
    [
      '127.0.0.1:' + env.tcpPort,
      '-sf',
      join(SCEN, 'uac_auth.xml'),
      '-inf',
      uacCsv(work, 'tcp.csv', [['alice', 'alicepw', 'carol']]),
      '-m',
      '1',
      '-i',
      '127.0.0.1',
      '-nostdin',
      '-timeout',
      '20s',
      '-timeout_error',
      '-t',
      't1',
      '-d',
      '500',
    ],
    work,
  );
  const [a, b] = await Promise.all([caller, callee.done]);
  assert.equal(a.code, 0, a.out.slice(-1500));
  assert.equal(b.code, 0, b.out.slice(-1500));
  const rows = await waitFor(
    () => cdrsOf(alice),
    (r) => r.length > n,
  );
  assert.equal(rows.at(-1)!.callee, 'carol');
  assert.match(rows.at(-1)!.reason, /^normal/);
});

test('shared reservation over SIP: while a first call holds the 4 s the credit pays, a parallel call of the same account is refused 402; the first is cut at 4 s', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const u = (await env.services.users.create({ username: 'lena', password: 'lenapw1' })).id;
  await env.services.ledger.post({ userId: u, amount: 4_000_000, reason: 'test' });
  const callee = await uas(work, 'uas_answer.xml');
  env.router.gateways = [
    {
      id: 1,
      name: 'gwP',
      host: '127.0.0.1',
      port: callee.port,
      transport: 'udp',
      username: '',
      password: '',
      number: '',
    },
  ];
  const first = uac(env, work, 'uac_auth_cut.xml', uacCsv(work, 'p1.csv', [['lena', 'lenapw1', '4900100100']]));
  await waitFor(
    () => env.b2bua.live.stats().connected,
    (n) => n >= 1,
  );
  assert.equal(env.b2bua.live.reservedFor(u), 4_000_000, 'the first call holds the whole balance');
  const second = await uac(env, work, 'uac_auth.xml', uacCsv(work, 'p2.csv', [['lena', 'lenapw1', '4900200200']]));
  assert.notEqual(second.code, 0, 'the parallel call was not connected');
  const [a, b] = await Promise.all([first, callee.done]);
  assert.equal(a.code, 0, a.out.slice(-1500));
  assert.equal(b.code, 0, b.out.slice(-1500));
  const rows = await waitFor(
    () => cdrsOf(u),
    (r) => r.length >= 2,
  );
  const refused = rows.find((r) => r.callee === '4900200200')!;
  const cut = rows.find((r) => r.callee === '4900100100')!;
  assert.equal(refused.reason, 'insufficient credit');
  assert.equal(Number(refused.cost), 0);
  assert.equal(cut.duration, 4);
  assert.equal(Number(cut.cost), 4_000_000);
  assert.equal((await env.services.ledger.balance(u))!.credit, 0);
  assert.equal(env.b2bua.live.reservedFor(u), 0);
});
