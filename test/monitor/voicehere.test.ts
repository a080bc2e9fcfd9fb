/**
 * voicehere end to end: sipp A calls sipp B through the B2BUA with the RTP relay, the test's own UDP sockets stand in
 * for the two phones' media (A streams a 440 Hz tone, B a 1000 Hz tone, µ-law) and for the listener's; the admin runs
 * voicehere over the HTTP API naming a listener (a sipp UAS registered as a SIP user). Checked: the listener hears
 * both tones mixed in one PCMU stream (packet count bounded by the 20 ms clock, one SSRC, consecutive sequence
 * numbers), A and B still get each other's packets byte for byte and nothing else, the call ending sends BYE to the
 * listener, the listener's BYE stops the fork while the call goes on; refusals: a call not relayed, an unknown call,
 * a listener without a phone, a caller who is not an admin, a listener who answers 486, a listener still ringing when
 * the call ends (CANCELled, the API answers ERROR).
 * The relay's port range is a dedicated block of 6 ports per server: A side = min, B side = min+2, listener = min+4.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ADMIN_PASSWORD } from '../helpers/server.js';
import { skipWithout } from '../helpers/tools.js';
import { startListening } from '../helpers/processes.js';
import {
  runTool,
  SIPP,
  SCEN,
  uacCsv,
  registerAt,
  sleep,
  waitFor,
  startCallEnv,
  type CallEnv,
} from '../calls/helpers.js';
import { decode, encode } from '../../src/sip/conference/g711.js';

const OWN_SCEN = resolve(process.cwd(), 'test/monitor/scenarios');
const work = mkdtempSync(join(tmpdir(), 'voxswitch-voicehere-'));
after(() => rmSync(work, { recursive: true, force: true }));

async function startEnv(overrides: Record<string, string>): Promise<CallEnv> {
  const env = await startCallEnv({ options: { rtptimeout: '0', ...overrides } });
  env.services.calls = env.b2bua; // the API's voicehere reaches this B2BUA
  for (const [u, pw] of [
    ['ann', 'annpw1'],
    ['ben', 'benpw1'],
    ['lis', 'lispw1'],
  ])
    await env.services.users.create({ username: u!, password: pw! });
  return env;
}

/** A free block of 6 ports (3 even ones) for the relay and the listener. */
async function portBlock(): Promise<number> {
  for (;;) {
    const min = 40000 + 6 * Math.floor(Math.random() * 3000);
    const ok = await Promise.all(
      [0, 1, 2, 3, 4, 5].map(
        (d) =>
          new Promise<boolean>((res) => {
            const s = createSocket('udp4');
            s.once('error', () => res(false));
            s.bind(min + d, '127.0.0.1', () => s.close(() => res(true)));
          }),
      ),
    );
    if (ok.every(Boolean)) return min;
  }
}

interface Media {
  s: Socket;
  port: number;
  got: Buffer[];
}

async function media(): Promise<Media> {
  const s = createSocket('udp4');
  const m: Media = { s, port: 0, got: [] };
  s.on('message', (b) => m.got.push(b));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  m.port = s.address().port;
  return m;
}

/** Streams `frames` µ-law RTP packets of a `hz` tone every 20 ms from `m` to `port`; returns what was sent. */
async function stream(m: Media, port: number, frames: number, hz: number, first = 0): Promise<Buffer[]> {
  const sent: Buffer[] = [];
  for (let i = first; i < first + frames; i++) {
    const pcm = new Int16Array(160).map((_, k) =>
      Math.round(8000 * Math.sin((2 * Math.PI * hz * (i * 160 + k)) / 8000)),
    );
    const h = Buffer.alloc(12);
    h[0] = 0x80;
    h[1] = 0;
    h.writeUInt16BE(i & 0xffff, 2);
    h.writeUInt32BE(i * 160, 4);
    h.writeUInt32BE(hz, 8);
    const pkt = Buffer.concat([h, encode('pcmu', pcm)]);
    m.s.send(pkt, port, '127.0.0.1');
    sent.push(pkt);
    await sleep(20);
  }
  return sent;
}

/** Energy of `hz` in linear samples (Goertzel), normalised per sample. */
function toneLevel(pcm: Int16Array, hz: number): number {
  const w = (2 * Math.PI * hz) / 8000;
  const c = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (const x of pcm) {
    const s = x + c * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  return Math.sqrt(s1 * s1 + s2 * s2 - c * s1 * s2) / pcm.length;
}

/**
 * The tone's level frame by frame (20 ms each), averaged: a frame the mixer took late or skipped under load breaks
 * the phase between frames, which a Goertzel over the whole recording would count against the tone.
 */
function frameLevel(pcm: Int16Array, hz: number): number {
  let sum = 0;
  const n = Math.floor(pcm.length / 160);
  for (let i = 0; i < n; i++) sum += toneLevel(pcm.subarray(i * 160, (i + 1) * 160), hz);
  return sum / Math.max(1, n);
}

/** The listener's PCMU frames that carry sound (RMS above 200), decoded and joined. */
function heard(got: Buffer[]): Int16Array {
  const frames = got
    .filter((b) => b.length === 172 && (b[1]! & 0x7f) === 0)
    .map((b) => decode('pcmu', b.subarray(12)))
    .filter((f) => Math.sqrt(f.reduce((a, x) => a + x * x, 0) / f.length) > 200);
  const out = new Int16Array(frames.length * 160);
  frames.forEach((f, i) => out.set(f, i * 160));
  return out;
}

const ADMIN = { authid: 'admin', authpwd: ADMIN_PASSWORD };

/** An API request over HTTP (JSON answer). */
async function api(env: CallEnv, entry: string, params: Record<string, string>, auth = ADMIN) {
  const u = new URL(env.t.url('/mvapireq/'));
  for (const [k, v] of Object.entries({ apientry: entry, format: 'json', ...auth, ...params }))
    u.searchParams.set(k, v);
  const body = (await (await fetch(u)).json()) as {
    status: string;
    text: string;
    fields?: Record<string, string | number>;
    rows?: Array<Record<string, string | number>>;
  };
  return { ok: body.status === 'OK', ...body };
}

/** The callid of ann's live call, from quickstat. */
async function annsCall(env: CallEnv): Promise<string> {
  const q = await api(env, 'quickstat', {});
  const row = (q.rows ?? []).find((r) => r.caller === 'ann');
  assert.ok(row, 'quickstat lists the call: ' + JSON.stringify(q));
  return String(row.callid);
}

/** sipp UAS with the SDP port of `rtpport`: the callee (uas_relay.xml) or a listener scenario. */
function sippUas(scenario: string, rtpport: number, tag: string, extra: string[] = []) {
  return startListening(
    SIPP,
    (port) => [
      '-sf',
      scenario,
      '-i',
      '127.0.0.1',
      '-p',
      String(port),
      '-m',
      '1',
      '-nostdin',
      '-timeout',
      '25s',
      '-timeout_error',
      '-t',
      'u1',
      '-key',
      'rtpport',
      String(rtpport),
      '-trace_err',
      '-error_file',
      join(work, `${tag}.err`),
      ...extra,
    ],
    { cwd: work },
  );
}

/** sipp A calling ben with the SDP port `rtpport`, talking `ms` before its BYE. */
function caller(env: CallEnv, rtpport: number, ms: number, tag: string) {
  return runTool(
    SIPP,
    [
      '127.0.0.1:' + env.udpPort,
      '-sf',
      join(SCEN, 'uac_relay.xml'),
      '-inf',
      uacCsv(work, `${tag}.csv`, [['ann', 'annpw1', 'ben']]),
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
      '-key',
      'rtpport',
      String(rtpport),
      '-d',
      String(ms),
    ],
    work,
  );
}

const hex = (list: Buffer[]) => list.map((b) => b.toString('hex'));

test('voicehere: the listener hears both sides mixed, the parties get each other unchanged, the call end hangs the listener up', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const min = await portBlock();
  const env = await startEnv({ rtprelay: 'always', rtpportmin: String(min), rtpportmax: String(min + 5) });
  const [a, b, l] = await Promise.all([media(), media(), media()]);
  try {
    const callee = await sippUas(join(SCEN, 'uas_relay.xml'), b.port, 'v1-callee');
    registerAt(env, 'ben', callee.port);
    const listener = await sippUas(join(SCEN, 'uas_relay.xml'), l.port, 'v1-listener');
    registerAt(env, 'lis', listener.port);
    const call = caller(env, a.port, 5000, 'v1');
    await waitFor(
      () => env.sip.status('ann'),
      (s) => s === 4,
    );
    const callid = await annsCall(env);
    const relA = min;
    const relB = min + 2;
    // refusals first: not an admin, a listener without a phone, no dbcallid
    const user = await api(
      env,
      'voicehere',
      { dbcallid: callid, listener: 'lis' },
      { authid: 'ann', authpwd: 'annpw1' },
    );
    assert.equal(user.ok, false, 'a user who is not an admin is refused: ' + user.text);
    const nobody = await api(env, 'voicehere', { dbcallid: callid, listener: 'ben2' });
    assert.equal(nobody.ok, false);
    assert.match(nobody.text, /listener ben2 has no registered phone/);
    const missing = await api(env, 'voicehere', { listener: 'lis' });
    assert.match(missing.text, /dbcallid is missing/);
    assert.equal(l.got.length, 0, 'nothing reached the listener yet');

    const t0 = Date.now();
    const fromA = stream(a, relA, 150, 440);
    const fromB = stream(b, relB, 150, 1000);
    await sleep(200);
    const v = await api(env, 'voicehere', { dbcallid: callid, listener: 'lis' });
    assert.equal(v.ok, true, v.text);
    assert.equal(v.fields?.codec, 'pcmu');
    assert.equal(Number(v.fields?.port), min + 4, 'the listener is sent from the pair after the relay');
    const tListen = Date.now();
    const [sentA, sentB] = await Promise.all([fromA, fromB]);
    const views = await env.b2bua.monitor.list(callid);
    assert.equal(views.length, 1);
    assert.ok(views[0]!.fedA > 50 && views[0]!.fedB > 50, 'both sides fed to the mix: ' + JSON.stringify(views));

    const [ra, rb, rl] = await Promise.all([call, callee.done, listener.done]);
    const tEnd = Date.now();
    assert.equal(ra.code, 0, 'caller: ' + ra.out.slice(-1500));
    assert.equal(rb.code, 0, 'callee: ' + rb.out.slice(-1500));
    assert.equal(rl.code, 0, 'the listener got the BYE at call end: ' + rl.out.slice(-1500));

    // the parties: each got exactly what the other sent, nothing from the fork
    assert.deepEqual(hex(b.got), hex(sentA), 'B received A unchanged');
    assert.deepEqual(hex(a.got), hex(sentB), 'A received B unchanged');

    // the listener: one PCMU stream on the 20 ms clock, carrying both tones
    const pkts = l.got.filter((x) => x.length === 172 && (x[1]! & 0x7f) === 0);
    assert.equal(pkts.length, l.got.length, 'only 20 ms PCMU packets');
    const bound = Math.ceil((tEnd - tListen + 200) / 20) + 5;
    assert.ok(pkts.length >= 50 && pkts.length <= bound, `listener packets ${pkts.length} (bound ${bound})`);
    assert.equal(new Set(pkts.map((x) => x.readUInt32BE(8))).size, 1, 'one SSRC');
    const seqs = pkts.map((x) => x.readUInt16BE(2));
    assert.ok(
      seqs.every((s, i) => i === 0 || s === ((seqs[i - 1]! + 1) & 0xffff)),
      'consecutive sequence numbers',
    );
    const pcm = heard(l.got);
    assert.ok(pcm.length >= 50 * 160, `at least a second of sound (${pcm.length / 160} frames)`);
    const t440 = frameLevel(pcm, 440);
    const t1000 = frameLevel(pcm, 1000);
    const off = frameLevel(pcm, 2500);
    assert.ok(t440 > 1000, `A's 440 Hz heard (${t440.toFixed(0)})`);
    assert.ok(t1000 > 1000, `B's 1000 Hz heard (${t1000.toFixed(0)})`);
    assert.ok(off < t440 / 10 && off < t1000 / 10, `no other tone (2500 Hz: ${off.toFixed(0)})`);
    assert.ok(Date.now() - t0 < 20_000);

    // the fork is gone with the call
    await waitFor(
      () => env.b2bua.monitor.list(),
      (x) => x.length === 0,
      3000,
    );
    assert.deepEqual(await env.b2bua.monitor.list(), []);
    const st = await env.b2bua.conference.stats();
    assert.deepEqual(
      st.participants.filter((p) => p.room.startsWith('monitor:')),
      [],
      'the mixer closed the listener room',
    );
  } finally {
    for (const m of [a, b, l]) m.s.close();
    await env.stop();
  }
});

test('voicehere: the listener hanging up stops the fork, the call goes on unchanged', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const min = await portBlock();
  const env = await startEnv({ rtprelay: 'always', rtpportmin: String(min), rtpportmax: String(min + 5) });
  const [a, b, l] = await Promise.all([media(), media(), media()]);
  try {
    const callee = await sippUas(join(SCEN, 'uas_relay.xml'), b.port, 'v2-callee');
    registerAt(env, 'ben', callee.port);
    const listener = await sippUas(join(OWN_SCEN, 'listener_hangs_up.xml'), l.port, 'v2-listener', ['-d', '1000']);
    registerAt(env, 'lis', listener.port);
    const call = caller(env, a.port, 5000, 'v2');
    await waitFor(
      () => env.sip.status('ann'),
      (s) => s === 4,
    );
    const callid = await annsCall(env);
    const fromA = stream(a, min, 40, 440);
    const v = await api(env, 'voicehere', { dbcallid: callid, listener: 'lis' });
    assert.equal(v.ok, true, v.text);
    const sentA1 = await fromA;
    const rl = await listener.done;
    assert.equal(rl.code, 0, 'the listener hung up: ' + rl.out.slice(-1500));
    await waitFor(
      () => env.b2bua.monitor.list(),
      (x) => x.length === 0,
      3000,
    );
    assert.deepEqual(await env.b2bua.monitor.list(), [], 'the fork stopped');
    assert.ok(l.got.length > 10, `the listener was sent audio (${l.got.length})`);
    await sleep(200);
    const n = l.got.length;
    // the call goes on: both directions still relayed, nothing more to the listener
    const [sentA2, sentB] = await Promise.all([stream(a, min, 25, 440, 40), stream(b, min + 2, 25, 1000)]);
    await sleep(200);
    assert.equal(l.got.length, n, 'nothing sent to the listener after its BYE');
    assert.equal(await env.sip.status('ann'), 4, 'the call is still up');
    const [ra, rb] = await Promise.all([call, callee.done]);
    assert.equal(ra.code, 0, 'caller: ' + ra.out.slice(-1500));
    assert.equal(rb.code, 0, 'callee: ' + rb.out.slice(-1500));
    assert.deepEqual(hex(b.got), hex([...sentA1, ...sentA2]), 'B received A unchanged throughout');
    assert.deepEqual(hex(a.got), hex(sentB));
    const cdr = await waitFor(
      () => env.services.storage.db.selectFrom('tb_cdrs').selectAll().where('callee', '=', 'ben').execute(),
      (r) => r.length > 0,
    );
    assert.equal(cdr.length, 1, 'one CDR: the call; the listening has none');
    assert.match(cdr[0]!.reason, /^normal/);
  } finally {
    for (const m of [a, b, l]) m.s.close();
    await env.stop();
  }
});

test('voicehere: a call whose media do not pass through voxswitch and an unknown call are refused with an ERROR', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const min = await portBlock();
  // rtprelay=nat (the default): a call between two loopback phones is not NATed, so its media go end to end
  const env = await startEnv({ rtpportmin: String(min), rtpportmax: String(min + 5) });
  const [a, b] = await Promise.all([media(), media()]);
  try {
    const callee = await sippUas(join(SCEN, 'uas_relay.xml'), b.port, 'v3-callee');
    registerAt(env, 'ben', callee.port);
    registerAt(env, 'lis', b.port); // a registered listener (never called)
    const call = caller(env, a.port, 1500, 'v3');
    await waitFor(
      () => env.sip.status('ann'),
      (s) => s === 4,
    );
    assert.equal(env.b2bua.media.size, 0, 'the call is not relayed');
    const callid = await annsCall(env);
    const r = await api(env, 'voicehere', { dbcallid: callid, listener: 'lis' });
    assert.equal(r.ok, false);
    assert.match(r.text, /do not pass through voxswitch .*rtprelay=nat.*rtprelay=always/);
    const unknown = await api(env, 'voicehere', { dbcallid: 'no-such-call', listener: 'lis' });
    assert.equal(unknown.ok, false);
    assert.match(unknown.text, /no live call with id no-such-call/);
    const [ra, rb] = await Promise.all([call, callee.done]);
    assert.equal(ra.code, 0, 'caller: ' + ra.out.slice(-1500));
    assert.equal(rb.code, 0, 'callee: ' + rb.out.slice(-1500));
    assert.equal(b.got.length, 0, 'nothing was sent to the would-be listener');
  } finally {
    for (const m of [a, b]) m.s.close();
    await env.stop();
  }
});

test('voicehere: a listener that refuses gives an ERROR; one still ringing when the call ends is CANCELled', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const min = await portBlock();
  const env = await startEnv({ rtprelay: 'always', rtpportmin: String(min), rtpportmax: String(min + 5) });
  await env.services.users.create({ username: 'lis2', password: 'lis2pw1' });
  const [a, b] = await Promise.all([media(), media()]);
  try {
    const callee = await sippUas(join(SCEN, 'uas_relay.xml'), b.port, 'v4-callee');
    registerAt(env, 'ben', callee.port);
    const busy = await sippUas(join(SCEN, 'uas_busy.xml'), 0, 'v4-busy');
    registerAt(env, 'lis', busy.port);
    const ringing = await sippUas(join(SCEN, 'uas_ring.xml'), 0, 'v4-ring');
    registerAt(env, 'lis2', ringing.port);
    const call = caller(env, a.port, 2500, 'v4');
    await waitFor(
      () => env.sip.status('ann'),
      (s) => s === 4,
    );
    const callid = await annsCall(env);
    const refused = await api(env, 'voicehere', { dbcallid: callid, listener: 'lis' });
    assert.equal(refused.ok, false);
    assert.match(refused.text, /listener lis refused: 486/);
    assert.equal((await busy.done).code, 0, 'the busy listener saw its INVITE and ACK');
    // lis2 rings until the caller hangs up (about 2.5 s after the answer): the INVITE is CANCELled
    const t0 = Date.now();
    const late = await api(env, 'voicehere', { dbcallid: callid, listener: 'lis2' });
    assert.equal(late.ok, false);
    assert.match(late.text, /listener lis2: call ended before the listener answered/);
    assert.ok(Date.now() - t0 < 10_000, 'answered when the call ended, not after the ring limit');
    const rr = await ringing.done;
    assert.equal(rr.code, 0, 'the ringing listener got the CANCEL: ' + rr.out.slice(-1500));
    const [ra, rb] = await Promise.all([call, callee.done]);
    assert.equal(ra.code, 0, 'caller: ' + ra.out.slice(-1500));
    assert.equal(rb.code, 0, 'callee: ' + rb.out.slice(-1500));
    assert.deepEqual(await env.b2bua.monitor.list(), []);
  } finally {
    for (const m of [a, b]) m.s.close();
    await env.stop();
  }
});
