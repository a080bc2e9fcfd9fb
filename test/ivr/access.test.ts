/**
 * Access numbers end to end with sipp as the caller and as the gateway: the IVR answers in early media (183 with its
 * SDP, the offer's telephone-event payload type), sipp sends the digits as RFC 4733 events (a pcap written here from
 * bytes, played with play_pcap_audio) or as SIP INFO; the call is then routed to the number dialled (the gateway
 * sipp gets the INVITE for it) and billed to the account; timeouts and wrong PINs end the call with their reason
 * and nothing billed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipWithout } from '../helpers/tools.js';
import { runTool, SIPP, uas, setRates, waitFor, sippTrace, TestRouter, type CallEnv } from '../calls/helpers.js';
import { accessScenario, callerCsv, dtmfPcap, startIvrEnv, type UacPlan } from './helpers.js';

const ACCESS = '18005550100';
let env: CallEnv;
let work: string;
let alice: number;
let pinUser: number;
let broke: number;

/** While `trunk` is set, calls from 127.0.0.1 without credentials come from a trunk (pin-less / PIN callers). */
class TrunkRouter extends TestRouter {
  trunk = false;
  override async gatewayForIp(): Promise<undefined> {
    return (this.trunk
      ? { id: 9, name: 'trunk', host: '127.0.0.1', username: '', registration: { register: false } }
      : undefined) as unknown as undefined;
  }
}
let router: TrunkRouter;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'voxswitch-access-'));
  env = await startIvrEnv(
    { accessnumber: `+${ACCESS}`, ivrtimeout: '2', ivrinterdigit: '2', ivrpintries: '2', ivrpinfailmax: '3' },
    (s) => (router = new TrunkRouter(s)),
  );
  const u = env.services.users;
  alice = (await u.create({ username: 'alice', password: 'alicepw' })).id;
  pinUser = (await u.create({ username: 'cardholder', password: 'cardpw12', pin: '4242' })).id;
  const currency = (await env.services.ledger.balance(alice))!.currency;
  await setRates(env.services, currency, [{ prefix: '36', price: 60_000_000 }]);
  await env.services.ledger.post({ userId: alice, amount: 100_000_000, reason: 'test' });
  await env.services.ledger.post({ userId: pinUser, amount: 100_000_000, reason: 'test' });
  broke = (await u.create({ username: 'broke', password: 'brokepw12', pin: '5151' })).id;
  await env.services.numbers.addCli(pinUser, '4915550077');
});
after(async () => {
  await env?.stop();
  rmSync(work, { recursive: true, force: true });
});

const cdrsOf = (userId: number) =>
  env.services.storage.db.selectFrom('tb_cdrs').selectAll().where('userid', '=', userId).orderBy('id').execute();

async function call(name: string, plan: UacPlan, user: string, pw: string, trace: string) {
  const scen = join(work, `${name}.xml`);
  accessScenario(scen, plan);
  return runTool(
    SIPP,
    [
      `127.0.0.1:${env.udpPort}`,
      '-sf',
      scen,
      '-inf',
      callerCsv(work, `${name}.csv`, user, pw),
      '-s',
      ACCESS,
      '-m',
      '1',
      '-i',
      '127.0.0.1',
      '-mi',
      '127.0.0.1',
      '-nostdin',
      '-timeout',
      '25s',
      '-timeout_error',
      '-trace_err',
      '-error_file',
      join(work, `${name}.err`),
      '-trace_msg',
      '-message_file',
      trace,
    ],
    work,
  );
}

test('a SIP user calls the access number, dials 3612345# by RFC 4733 events: routed to the gateway and billed', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const pcap = join(work, 'dest.pcap');
  dtmfPcap(pcap, '3612345#');
  const gwTrace = join(work, 'rtp-gw.msg');
  const callerTrace = join(work, 'rtp-caller.msg');
  const gw = await uas(work, 'uas_answer.xml', ['-trace_msg', '-message_file', gwTrace]);
  env.router.gateways = [
    { id: 1, name: 'gwA', host: '127.0.0.1', port: gw.port, transport: 'udp', username: '', password: '', number: '' },
  ];
  const [a, b] = await Promise.all([
    call('rtp', { auth: true, pcap, final: 200, holdMs: 1500 }, 'alice', 'alicepw', callerTrace),
    gw.done,
  ]);
  assert.equal(a.code, 0, 'caller: ' + a.out.slice(-1500));
  assert.equal(b.code, 0, 'gateway: ' + b.out.slice(-1500));
  const invite = sippTrace(gwTrace).find((m) => m.dir === 'received' && m.first.startsWith('INVITE '));
  assert.match(invite!.first, /^INVITE sip:3612345@/, 'the gateway was called for the digits dialled');
  const early = sippTrace(callerTrace).find((m) => m.dir === 'received' && m.first.startsWith('SIP/2.0 183'));
  assert.ok(early, 'the IVR answered in early media');
  const cdr = (
    await waitFor(
      () => cdrsOf(alice),
      (r) => r.some((x) => x.callee === '3612345'),
    )
  ).find((x) => x.callee === '3612345')!;
  assert.equal(cdr.route, 'gw:gwA');
  assert.ok(cdr.duration >= 1, `billed duration ${cdr.duration}`);
  assert.ok(Number(cdr.cost) >= 1_000_000, `cost ${cdr.cost}`);
});

test('a trunk caller (no CLI) enters PIN 4242# and 3699# by SIP INFO: billed to the PIN holder', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const gwTrace = join(work, 'info-gw.msg');
  const gw = await uas(work, 'uas_answer.xml', ['-trace_msg', '-message_file', gwTrace]);
  router.gateways = [
    { id: 1, name: 'gwB', host: '127.0.0.1', port: gw.port, transport: 'udp', username: '', password: '', number: '' },
  ];
  router.trunk = true;
  try {
    const [a, b] = await Promise.all([
      call('info', { auth: false, info: '4242#3699#', final: 200 }, '4915550001', 'x', join(work, 'info.msg')),
      gw.done,
    ]);
    assert.equal(a.code, 0, 'caller: ' + a.out.slice(-1500));
    assert.equal(b.code, 0, 'gateway: ' + b.out.slice(-1500));
    const invite = sippTrace(gwTrace).find((m) => m.dir === 'received' && m.first.startsWith('INVITE '));
    assert.match(invite!.first, /^INVITE sip:3699@/);
    const cdr = (
      await waitFor(
        () => cdrsOf(pinUser),
        (r) => r.some((x) => x.callee === '3699'),
      )
    ).find((x) => x.callee === '3699')!;
    assert.equal(cdr.route, 'gw:gwB');
    assert.ok(Number(cdr.cost) > 0);
  } finally {
    router.trunk = false;
    router.gateways = [];
  }
});

test('wrong PIN twice: 403 after the prompts; no key at all: 408; nothing billed', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  router.trunk = true;
  try {
    const before = (await cdrsOf(pinUser)).length;
    const t0 = Date.now();
    const wrong = await call(
      'wrong',
      { auth: false, info: '9999#,,8888#', final: 403 },
      '4915550002',
      'x',
      join(work, 'w.msg'),
    );
    assert.equal(wrong.code, 0, 'caller got 403: ' + wrong.out.slice(-1500));
    const wrongMs = Date.now() - t0;
    const t1 = Date.now();
    const silent = await call('silent', { auth: false, final: 408 }, '4915550003', 'x', join(work, 's.msg'));
    assert.equal(silent.code, 0, 'caller got 408: ' + silent.out.slice(-1500));
    const silentMs = Date.now() - t1;
    assert.ok(silentMs >= 2000, `the PIN was waited for ivrtimeout (2 s): ${silentMs} ms`);
    assert.ok(wrongMs < 20_000 && silentMs < 20_000);
    const reason = sippTrace(join(work, 'w.msg')).find((m) => m.first.startsWith('SIP/2.0 403'))!.first;
    assert.match(reason, /wrong PIN/);
    assert.equal((await cdrsOf(pinUser)).length, before, 'no CDR for a refused caller');
    assert.equal((await env.services.storage.db.selectFrom('tb_livecalls').selectAll().execute()).length, 0);
  } finally {
    router.trunk = false;
    router.gateways = [];
  }
});

test('a pin-less CLI is not asked for a PIN; an account without credit hears nocredit and gets 402', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  router.trunk = true;
  const gwTrace = join(work, 'cli-gw.msg');
  const gw = await uas(work, 'uas_answer.xml', ['-trace_msg', '-message_file', gwTrace]);
  router.gateways = [
    { id: 1, name: 'gwC', host: '127.0.0.1', port: gw.port, transport: 'udp', username: '', password: '', number: '' },
  ];
  try {
    // the CLI's account: only the number is asked (a PIN typed first would be taken as the number)
    const [a, b] = await Promise.all([
      call('cli', { auth: false, info: '3677#', final: 200 }, '4915550077', 'x', join(work, 'cli.msg')),
      gw.done,
    ]);
    assert.equal(a.code, 0, 'caller: ' + a.out.slice(-1500));
    assert.equal(b.code, 0, 'gateway: ' + b.out.slice(-1500));
    const invite = sippTrace(gwTrace).find((m) => m.dir === 'received' && m.first.startsWith('INVITE '));
    assert.match(invite!.first, /^INVITE sip:3677@/);
    await waitFor(
      () => cdrsOf(pinUser),
      (r) => r.some((x) => x.callee === '3677'),
    );
    const t0 = Date.now();
    const poor = await call('poor', { auth: false, info: '5151#', final: 402 }, '4915550088', 'x', join(work, 'p.msg'));
    assert.equal(poor.code, 0, 'caller got 402: ' + poor.out.slice(-1500));
    assert.ok(Date.now() - t0 > 1000, 'the prompts were played first');
    const refusal = sippTrace(join(work, 'p.msg')).find((m) => m.first.startsWith('SIP/2.0 402'))!.first;
    assert.match(refusal, /no credit left/);
    assert.equal((await cdrsOf(broke)).length, 0);
  } finally {
    router.trunk = false;
    router.gateways = [];
  }
});

test('wrong PINs count across calls: past ivrpinfailmax a caller number is refused before the IVR answers', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  router.trunk = true;
  try {
    const guesser = '4915550099';
    const first = await call(
      'g1',
      { auth: false, info: '1111#,,2222#', final: 403 },
      guesser,
      'x',
      join(work, 'g1.msg'),
    );
    assert.equal(first.code, 0, 'first call: ' + first.out.slice(-1500));
    assert.match(sippTrace(join(work, 'g1.msg')).find((m) => m.first.startsWith('SIP/2.0 403'))!.first, /wrong PIN/);
    // the third wrong PIN in all reaches the limit inside the second call
    const second = await call('g2', { auth: false, info: '3333#', final: 403 }, guesser, 'x', join(work, 'g2.msg'));
    assert.equal(second.code, 0, 'second call: ' + second.out.slice(-1500));
    const stop = sippTrace(join(work, 'g2.msg')).find((m) => m.first.startsWith('SIP/2.0 403'))!.first;
    assert.match(stop, /too many wrong PINs from this number/);
    // the next call is refused at once, without early media, even with the right PIN ready
    const t0 = Date.now();
    const third = await call('g3', { auth: false, early: false, final: 403 }, guesser, 'x', join(work, 'g3.msg'));
    assert.equal(third.code, 0, 'third call: ' + third.out.slice(-1500));
    assert.ok(Date.now() - t0 < 1500, 'refused before any prompt');
    const msgs = sippTrace(join(work, 'g3.msg'));
    assert.equal(msgs.filter((m) => m.first.startsWith('SIP/2.0 183')).length, 0);
    assert.match(msgs.find((m) => m.first.startsWith('SIP/2.0 403'))!.first, /too many wrong PINs/);
    // another caller number is still asked for its PIN and gets through
    const gw = await uas(work, 'uas_answer.xml', []);
    router.gateways = [
      {
        id: 1,
        name: 'gwD',
        host: '127.0.0.1',
        port: gw.port,
        transport: 'udp',
        username: '',
        password: '',
        number: '',
      },
    ];
    const [ok, b] = await Promise.all([
      call('g4', { auth: false, info: '4242#3688#', final: 200 }, '4915550098', 'x', join(work, 'g4.msg')),
      gw.done,
    ]);
    assert.equal(ok.code, 0, 'other caller: ' + ok.out.slice(-1500));
    assert.equal(b.code, 0, 'gateway: ' + b.out.slice(-1500));
  } finally {
    router.trunk = false;
    router.gateways = [];
  }
});
