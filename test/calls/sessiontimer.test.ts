/**
 * RFC 4028 session timers (src/sip/calls/sessiontimer.ts): negotiation (422 / Min-SE, refresher choice), expiry
 * arithmetic and the refresh / expiry flow with an injected scheduler and a fake stack; then with sipp as real peers:
 * a caller that vanishes after the ACK (no refresh answered, no BYE) is ended by the session timer — BYE to the callee,
 * one CDR with reason "session timer expired" — and a too small Session-Expires gets 422 with Min-SE.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SessionTimers,
  negotiateUas,
  fromUacResponse,
  offerHeaders,
  parseMinSe,
  parseSessionExpires,
  schedule,
  supportsTimer,
  type DialogLeg,
  type TimerScheduler,
} from '../../src/sip/calls/sessiontimer.js';
import type { SipHeader, SipRequest, SipResponse } from '../../src/sip/message/index.js';
import { getHeader } from '../../src/sip/message/index.js';
import { startCallEnv, uas, uac, uacCsv, registerAt, waitFor, runTool, SIPP, SCEN, type CallEnv } from './helpers.js';
import { skipWithout } from '../helpers/tools.js';

const CFG = { sessionExpires: 1800, minSe: 90 };
const msg = (headers: Array<[string, string]>): { headers: SipHeader[] } => ({
  headers: headers.map(([name, value]) => ({ name, value })),
});
const hdr = (h: SipHeader[], name: string) => getHeader({ headers: h }, name);

describe('negotiation', () => {
  test('parsing Session-Expires, Min-SE and the timer option tag (compact forms too)', () => {
    assert.deepEqual(parseSessionExpires('1800;refresher=uac'), { delta: 1800, refresher: 'uac' });
    assert.deepEqual(parseSessionExpires(' 90 ; refresher=UAS'), { delta: 90, refresher: 'uas' });
    assert.deepEqual(parseSessionExpires('600;foo=bar'), { delta: 600 });
    assert.equal(parseSessionExpires('abc'), null);
    assert.equal(parseSessionExpires('0'), null);
    assert.equal(parseSessionExpires(undefined), null);
    assert.equal(parseMinSe('90'), 90);
    assert.equal(parseMinSe(' 120;x=y'), 120);
    assert.equal(parseMinSe('x'), null);
    assert.equal(supportsTimer(msg([['Supported', '100rel, timer']])), true);
    assert.equal(supportsTimer(msg([['k', 'timer']])), true);
    assert.equal(supportsTimer(msg([['Require', 'timer']])), true);
    assert.equal(supportsTimer(msg([['Supported', 'timers, 100rel']])), false);
    assert.equal(parseSessionExpires(getHeader(msg([['x', '300']]), 'Session-Expires')!)?.delta, 300);
  });

  test('a Session-Expires below our Min-SE is refused with 422 and our Min-SE', () => {
    const n = negotiateUas(
      msg([
        ['Supported', 'timer'],
        ['Session-Expires', '60'],
      ]),
      CFG,
    );
    assert.equal(n.kind, 'reject');
    assert.equal(n.kind === 'reject' && hdr(n.headers, 'Min-SE'), '90');
    // equal to Min-SE is fine
    assert.equal(negotiateUas(msg([['Session-Expires', '90']]), CFG).kind, 'timer');
    // small values accepted when configured explicitly (tests): sessionexpires=4, minse=2
    const small = negotiateUas(
      msg([
        ['Supported', 'timer'],
        ['Session-Expires', '4'],
      ]),
      { sessionExpires: 4, minSe: 2 },
    );
    assert.equal(small.kind === 'timer' && small.interval, 4);
    assert.equal(negotiateUas(msg([['Session-Expires', '1']]), { sessionExpires: 4, minSe: 2 }).kind, 'reject');
  });

  test("refresher: the caller's choice is honoured; left to us we refresh; a UAC without timer support forces uas", () => {
    const uac = negotiateUas(
      msg([
        ['Supported', 'timer'],
        ['Session-Expires', '600;refresher=uac'],
      ]),
      CFG,
    );
    assert.ok(uac.kind === 'timer');
    assert.equal(uac.refresher, 'uac');
    assert.equal(uac.weRefresh, false);
    assert.equal(hdr(uac.headers, 'Session-Expires'), '600;refresher=uac');
    assert.equal(hdr(uac.headers, 'Require'), 'timer');
    const ours = negotiateUas(
      msg([
        ['Supported', 'timer'],
        ['Session-Expires', '600'],
      ]),
      CFG,
    );
    assert.ok(ours.kind === 'timer');
    assert.equal(ours.refresher, 'uas');
    assert.equal(ours.weRefresh, true);
    const theirsPreferred = negotiateUas(
      msg([
        ['Supported', 'timer'],
        ['Session-Expires', '600'],
      ]),
      CFG,
      false,
    );
    assert.ok(theirsPreferred.kind === 'timer' && theirsPreferred.refresher === 'uac');
    // Session-Expires inserted by a proxy, the UAC does not support timers: we (UAS) must refresh, no Require
    const legacy = negotiateUas(msg([['Session-Expires', '600;refresher=uac']]), CFG);
    assert.ok(legacy.kind === 'timer');
    assert.equal(legacy.refresher, 'uas');
    assert.equal(hdr(legacy.headers, 'Require'), undefined);
    // neither support nor Session-Expires: no timer on the leg
    assert.equal(negotiateUas(msg([]), CFG).kind, 'none');
    // sessionexpires=0 disables everything, even a tiny Session-Expires is not refused
    assert.equal(
      negotiateUas(
        msg([
          ['Supported', 'timer'],
          ['Session-Expires', '5'],
        ]),
        { sessionExpires: 0, minSe: 90 },
      ).kind,
      'none',
    );
  });

  test('interval: the smaller of theirs and ours, never below either Min-SE; ours when they sent none', () => {
    const big = negotiateUas(
      msg([
        ['Supported', 'timer'],
        ['Session-Expires', '7200'],
      ]),
      CFG,
    );
    assert.equal(big.kind === 'timer' && big.interval, 1800);
    const withMin = negotiateUas(
      msg([
        ['Supported', 'timer'],
        ['Session-Expires', '7200'],
        ['Min-SE', '3600'],
      ]),
      CFG,
    );
    assert.equal(withMin.kind === 'timer' && withMin.interval, 3600);
    const none = negotiateUas(msg([['Supported', 'timer']]), CFG);
    assert.ok(none.kind === 'timer');
    assert.equal(none.interval, 1800);
    assert.equal(hdr(none.headers, 'Session-Expires'), '1800;refresher=uas');
    // sessionexpires below minse: minse wins
    const low = negotiateUas(msg([['Supported', 'timer']]), { sessionExpires: 30, minSe: 90 });
    assert.equal(low.kind === 'timer' && low.interval, 90);
  });

  test('UAC side: offer headers, the 2xx decides (no Session-Expires: no timer)', () => {
    const o = offerHeaders(CFG);
    assert.equal(hdr(o, 'Supported'), 'timer');
    assert.equal(hdr(o, 'Session-Expires'), '1800');
    assert.equal(hdr(o, 'Min-SE'), '90');
    assert.deepEqual(offerHeaders({ sessionExpires: 0, minSe: 90 }), []);
    assert.deepEqual(fromUacResponse(msg([['Session-Expires', '900;refresher=uac']])), {
      interval: 900,
      weRefresh: true,
    });
    assert.deepEqual(fromUacResponse(msg([['Session-Expires', '900;refresher=uas']])), {
      interval: 900,
      weRefresh: false,
    });
    assert.equal(fromUacResponse(msg([])), null);
  });

  test('expiry arithmetic: refresher at half, the other side min(32 s, interval/3) before the end', () => {
    assert.deepEqual(schedule({ interval: 1800, weRefresh: true }), { refreshMs: 900_000, expireMs: 1_800_000 });
    assert.deepEqual(schedule({ interval: 1800, weRefresh: false }), { expireMs: 1_768_000 });
    assert.deepEqual(schedule({ interval: 90, weRefresh: false }), { expireMs: 60_000 });
    assert.deepEqual(schedule({ interval: 4, weRefresh: false }), { expireMs: 2667 });
    assert.deepEqual(schedule({ interval: 4, weRefresh: true }), { refreshMs: 2000, expireMs: 4000 });
  });
});

// ------------------------------------------------------------------ the refresh / expiry flow (fake stack + scheduler)

class FakeScheduler implements TimerScheduler {
  now = 0;
  timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
  set(fn: () => void, ms: number) {
    const t = { at: this.now + ms, fn, live: true };
    this.timers.push(t);
    return t;
  }
  clear(h: unknown) {
    (h as { live: boolean }).live = false;
  }
  /** advances the clock, firing due timers in order */
  advance(ms: number) {
    const end = this.now + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.live && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.live = false;
      this.now = due.at;
      due.fn();
    }
    this.now = end;
  }
}

class FakeStack {
  sent: Array<{ req: SipRequest; ct: EventEmitter }> = [];
  request(req: SipRequest) {
    const ct = new EventEmitter();
    this.sent.push({ req, ct });
    return ct as never;
  }
}

function leg(tag: string): DialogLeg {
  return {
    callId: `cid-${tag}`,
    localTag: `lt-${tag}`,
    remoteTag: `rt-${tag}`,
    localUri: 'sip:srv@127.0.0.1',
    remoteUri: `sip:${tag}@127.0.0.1`,
    remoteTarget: `sip:${tag}@127.0.0.1:5070`,
    routes: [],
    target: { transport: 'udp', host: '127.0.0.1', port: 5070 },
    cseq: 1,
  };
}
const sdp = { type: 'application/sdp', data: Buffer.from('v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\n') };
const inviteFrom = (headers: Array<[string, string]>): SipRequest => ({
  type: 'request',
  method: 'INVITE',
  uri: 'sip:b@x',
  version: 'SIP/2.0',
  headers: headers.map(([name, value]) => ({ name, value })),
  body: Buffer.alloc(0),
});
const resp = (status: number, headers: Array<[string, string]> = []): SipResponse =>
  ({
    type: 'response',
    status,
    reason: 'x',
    version: 'SIP/2.0',
    headers: headers.map(([name, value]) => ({ name, value })),
    body: Buffer.alloc(0),
  }) as SipResponse;

function setup(cfg = { sessionExpires: 4, minSe: 2 }) {
  const sched = new FakeScheduler();
  const stack = new FakeStack();
  const st = new SessionTimers(
    stack as never,
    () => cfg,
    () => '<sip:127.0.0.1:5060>',
    { scheduler: sched },
  );
  const expired: string[] = [];
  return { sched, stack, st, expired, onExpire: (l: 'a' | 'b') => expired.push(l) };
}

describe('refresh and expiry', () => {
  test('we refresh A at half the interval with a re-INVITE carrying the SDP we sent; its 2xx is ACKed and re-arms', () => {
    const { sched, stack, st, expired, onExpire } = setup();
    const a = leg('a');
    const b = leg('b');
    const h = st.connect(
      a,
      inviteFrom([
        ['Supported', 'timer'],
        ['Session-Expires', '4'],
      ]),
      b,
      resp(200),
      { a: () => sdp, b: () => undefined },
      onExpire,
    );
    assert.equal(hdr(h, 'Session-Expires'), '4;refresher=uas');
    assert.equal(hdr(h, 'Require'), 'timer');
    assert.deepEqual(st.params(a), { interval: 4, weRefresh: true });
    assert.equal(st.params(b), undefined, 'the callee answered without Session-Expires: no timer on B');
    sched.advance(1999);
    assert.equal(stack.sent.length, 0);
    sched.advance(1);
    assert.equal(stack.sent.length, 1);
    const re = stack.sent[0]!.req;
    assert.equal(re.method, 'INVITE');
    assert.equal(re.uri, 'sip:a@127.0.0.1:5070');
    assert.equal(getHeader(re, 'CSeq'), '2 INVITE');
    assert.equal(getHeader(re, 'To'), '<sip:a@127.0.0.1>;tag=rt-a');
    assert.equal(getHeader(re, 'Session-Expires'), '4;refresher=uac');
    assert.equal(re.body.toString(), sdp.data.toString());
    stack.sent[0]!.ct.emit('final', resp(200, [['Session-Expires', '4;refresher=uac']]));
    assert.equal(stack.sent[1]!.req.method, 'ACK');
    assert.equal(getHeader(stack.sent[1]!.req, 'CSeq'), '2 ACK');
    // re-armed from t=2000: no expiry at 4000, the next refresh at 4000
    sched.advance(2000);
    assert.deepEqual(expired, []);
    assert.equal(stack.sent.length, 3);
    assert.equal(st.counters.refreshes, 2);
  });

  test('a refresh that is never answered ends the call at the end of the interval; a 408/481 or a timeout at once', () => {
    const { sched, stack, st, expired, onExpire } = setup();
    st.connect(
      leg('a'),
      inviteFrom([
        ['Supported', 'timer'],
        ['Session-Expires', '4'],
      ]),
      leg('b'),
      resp(200),
      { a: () => sdp, b: () => undefined },
      onExpire,
    );
    sched.advance(3999);
    assert.equal(stack.sent.length, 1);
    assert.deepEqual(expired, []);
    sched.advance(1);
    assert.deepEqual(expired, ['a']);
    assert.equal(st.counters.expired, 1);

    const x = setup();
    x.st.connect(
      leg('a'),
      inviteFrom([
        ['Supported', 'timer'],
        ['Session-Expires', '4'],
      ]),
      leg('b'),
      resp(200),
      { a: () => sdp, b: () => undefined },
      x.onExpire,
    );
    x.sched.advance(2000);
    x.stack.sent[0]!.ct.emit('final', resp(481));
    assert.deepEqual(x.expired, ['a']);
    x.sched.advance(10_000);
    assert.deepEqual(x.expired, ['a'], 'expires once');

    const y = setup();
    y.st.connect(
      leg('a'),
      inviteFrom([
        ['Supported', 'timer'],
        ['Session-Expires', '4'],
      ]),
      leg('b'),
      resp(200),
      { a: () => sdp, b: () => undefined },
      y.onExpire,
    );
    y.sched.advance(2000);
    y.stack.sent[0]!.ct.emit('timeout');
    assert.deepEqual(y.expired, ['a']);
  });

  test('the caller refreshes (refresher=uac): a relayed re-INVITE 2xx re-arms; no refresh → expiry min(32, SE/3) early', () => {
    const { sched, stack, st, expired, onExpire } = setup({ sessionExpires: 6, minSe: 2 });
    const a = leg('a');
    const b = leg('b');
    st.connect(
      a,
      inviteFrom([
        ['Supported', 'timer'],
        ['Session-Expires', '6;refresher=uac'],
      ]),
      b,
      resp(200, [['Session-Expires', '6;refresher=uas']]),
      { a: () => sdp, b: () => sdp },
      onExpire,
    );
    assert.deepEqual(st.params(a), { interval: 6, weRefresh: false });
    assert.deepEqual(st.params(b), { interval: 6, weRefresh: false });
    sched.advance(3000);
    // the caller's refresh, relayed to B and answered 200
    const h = st.reinvited(
      a,
      inviteFrom([
        ['Supported', 'timer'],
        ['Session-Expires', '6;refresher=uac'],
      ]),
      b,
      resp(200, [['Session-Expires', '6;refresher=uas']]),
    );
    assert.equal(hdr(h, 'Session-Expires'), '6;refresher=uac');
    assert.deepEqual(
      st.requestHeaders(b).map((x) => x.value),
      ['timer', '6;refresher=uas', '2'],
    );
    sched.advance(3999); // 4 s after the refresh: 6 − min(32, 2) = 4 s
    assert.deepEqual(expired, []);
    sched.advance(1);
    assert.deepEqual(expired.sort(), ['a', 'b']);
    assert.equal(stack.sent.length, 0, 'we never refresh when the peers do');
  });

  test('disarm (call ended) stops every timer; sessionexpires=0 arms nothing', () => {
    const { sched, stack, st, expired, onExpire } = setup();
    const a = leg('a');
    st.connect(
      a,
      inviteFrom([
        ['Supported', 'timer'],
        ['Session-Expires', '4'],
      ]),
      leg('b'),
      resp(200),
      { a: () => sdp, b: () => undefined },
      onExpire,
    );
    st.disarm(a);
    sched.advance(60_000);
    assert.deepEqual(expired, []);
    assert.equal(stack.sent.length, 0);
    const off = setup({ sessionExpires: 0, minSe: 90 });
    assert.deepEqual(
      off.st.connect(
        leg('a'),
        inviteFrom([
          ['Supported', 'timer'],
          ['Session-Expires', '4'],
        ]),
        leg('b'),
        resp(200, [['Session-Expires', '4;refresher=uac']]),
        { a: () => sdp, b: () => sdp },
        off.onExpire,
      ),
      [],
    );
    off.sched.advance(60_000);
    assert.deepEqual(off.expired, []);
  });

  test('a 422 from the callee: the INVITE is re-sent once with its Min-SE and the next CSeq', () => {
    const { st } = setup({ sessionExpires: 4, minSe: 2 });
    const b = leg('b');
    b.invite = inviteFrom([
      ['CSeq', '1 INVITE'],
      ...offerHeaders({ sessionExpires: 4, minSe: 2 }).map((x) => [x.name, x.value] as [string, string]),
      ['Content-Length', '0'],
    ]);
    assert.equal(st.retry422(b, resp(422, [['Min-SE', '90']])), true);
    assert.equal(getHeader(b.invite, 'CSeq'), '2 INVITE');
    assert.equal(getHeader(b.invite, 'Session-Expires'), '90');
    assert.equal(getHeader(b.invite, 'Min-SE'), '90');
    assert.equal(b.invite.headers.at(-1)!.name, 'Content-Length');
    assert.equal(st.retry422(b, resp(422, [['Min-SE', '120']])), false, 'once only');
    const c = leg('c');
    c.invite = inviteFrom([['CSeq', '1 INVITE']]);
    assert.equal(st.retry422(c, resp(422)), false, 'no Min-SE: no retry');
  });
});

// ------------------------------------------------------------------ with sipp as real peers

describe('sipp: a vanished caller', () => {
  let env: CallEnv;
  let work: string;
  let caller: number;
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'voxswitch-st-'));
    env = await startCallEnv();
    // small values are accepted when set explicitly (the RFC minimum of 90 s is the default)
    env.services.config.persist({ sessionexpires: '4', minse: '2' });
    caller = (await env.services.users.create({ username: 'ivan', password: 'ivanpw1' })).id;
    await env.services.users.create({ username: 'judy', password: 'judypw1' });
  });
  after(async () => {
    await env?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const csv = (name: string) => {
    const f = join(work, name);
    writeFileSync(f, 'SEQUENTIAL\nivan;[authentication username=ivan password=ivanpw1];judy\n');
    return f;
  };
  const uacSt = (scenario: string, se: string, inf: string) =>
    runTool(
      SIPP,
      [
        '127.0.0.1:' + env.udpPort,
        '-sf',
        join(SCEN, scenario),
        '-inf',
        inf,
        '-key',
        'se',
        se,
        '-m',
        '1',
        '-i',
        '127.0.0.1',
        '-nostdin',
        '-timeout',
        '25s',
        '-timeout_error',
        '-t',
        'u1',
        '-trace_err',
        '-error_file',
        join(work, `uac-${scenario}.err`),
      ],
      work,
    );
  /** sipp's output tail and its error file (the unexpected message) for a failed assertion */
  const why = (r: { out: string }, scenario: string) => {
    const f = join(work, `uac-${scenario}.err`);
    return r.out.slice(-600) + (existsSync(f) ? readFileSync(f, 'utf8').slice(-1500) : '');
  };
  const cdrs = () =>
    env.services.storage.db.selectFrom('tb_cdrs').selectAll().where('userid', '=', caller).orderBy('id').execute();

  test('the server refreshes, the caller answers nothing: BYE to the callee after the 4 s interval, CDR "session timer expired"', async (c) => {
    if (skipWithout(c, 'sipp')) return;
    const callee = await uas(work, 'uas_st.xml');
    registerAt(env, 'judy', callee.port);
    const refreshes = env.b2bua.timers.counters.refreshes;
    const t0 = Date.now();
    const [a, b] = await Promise.all([uacSt('uac_st_vanish.xml', '4', csv('v1.csv')), callee.done]);
    assert.equal(a.code, 0, why(a, 'uac_st_vanish.xml'));
    assert.equal(b.code, 0, b.out.slice(-1500));
    assert.ok(Date.now() - t0 >= 3500, 'not before the interval ran out');
    assert.ok(env.b2bua.timers.counters.refreshes > refreshes, 'a refresh re-INVITE was sent');
    const rows = await waitFor(cdrs, (r) => r.length > 0);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.reason, 'session timer expired');
    assert.ok(rows[0]!.duration >= 3 && rows[0]!.duration <= 5, `duration ${rows[0]!.duration}`);
    assert.equal(env.b2bua.live.list().length, 0);
    assert.equal(await env.sip.status('ivan'), 1);
  });

  test('the caller promised to refresh (refresher=uac) and vanished: ended min(32, SE/3) before expiry, no refresh of ours', async (c) => {
    if (skipWithout(c, 'sipp')) return;
    const callee = await uas(work, 'uas_st.xml');
    registerAt(env, 'judy', callee.port);
    const refreshes = env.b2bua.timers.counters.refreshes;
    const before = (await cdrs()).length;
    const [a, b] = await Promise.all([uacSt('uac_st_vanish.xml', '4;refresher=uac', csv('v2.csv')), callee.done]);
    assert.equal(a.code, 0, why(a, 'uac_st_vanish.xml'));
    assert.equal(b.code, 0, b.out.slice(-1500));
    assert.equal(env.b2bua.timers.counters.refreshes, refreshes);
    const rows = (await waitFor(cdrs, (r) => r.length > before)).slice(before);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.reason, 'session timer expired');
    assert.ok(rows[0]!.duration >= 2 && rows[0]!.duration <= 3, `duration ${rows[0]!.duration}`);
    assert.equal(env.b2bua.live.list().length, 0);
  });

  test('the callee makes us the refresher: our re-INVITE (same SDP) is answered and ACKed, the call goes on until the caller hangs up', async (c) => {
    if (skipWithout(c, 'sipp')) return;
    const callee = await uas(work, 'uas_st_refresh.xml');
    registerAt(env, 'judy', callee.port);
    const refreshes = env.b2bua.timers.counters.refreshes;
    const before = (await cdrs()).length;
    // a caller without timer support (no timer on A) talking 3.5 s: one refresh of B at 2 s
    const [a, b] = await Promise.all([
      uac(env, work, 'uac_auth.xml', uacCsv(work, 'v4.csv', [['ivan', 'ivanpw1', 'judy']]), 1, ['-d', '3500']),
      callee.done,
    ]);
    assert.equal(a.code, 0, a.out.slice(-1500));
    assert.equal(b.code, 0, b.out.slice(-1500));
    assert.equal(env.b2bua.timers.counters.refreshes, refreshes + 1);
    const rows = (await waitFor(cdrs, (r) => r.length > before)).slice(before);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.reason, 'normal (caller hung up)');
  });

  test('Session-Expires below Min-SE: 422 with Min-SE: 2, no call, no CDR', async (c) => {
    if (skipWithout(c, 'sipp')) return;
    const before = (await cdrs()).length;
    const a = await uacSt('uac_st_422.xml', '1', csv('v3.csv'));
    assert.equal(a.code, 0, why(a, 'uac_st_422.xml'));
    assert.equal((await cdrs()).length, before);
    assert.equal(env.b2bua.live.list().length, 0);
  });
});
