/**
 * The optional RTP relay through the B2BUA with sipp as the SIP peers (rtprelay=always): the SDP each side
 * receives points at the relay socket facing it, RTP sent by the test's own UDP sockets (standing in for the two
 * phones' media) passes both ways, the NATed caller is reached at the source it really sends from (latching), and
 * the RTP timeout ends a call whose caller vanished (BYE both legs, CDR reason "rtp timeout").
 * The relay's port range is a dedicated block of 4 ports, so the relay sockets are known: A side = min, B side = min+2.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipWithout } from '../helpers/tools.js';
import { startListening } from '../helpers/processes.js';
import { runTool, SIPP, SCEN, uas, uac, uacCsv, registerAt, sleep, startCallEnv, type CallEnv } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'voxswitch-relay-'));
after(() => rmSync(work, { recursive: true, force: true }));

async function startRelayEnv(overrides: Record<string, string>): Promise<CallEnv> {
  return startCallEnv({ options: { rtprelay: 'always', ...overrides } });
}

/** A free block of 4 ports (2 even ones) for the relay. */
async function relayBlock(): Promise<number> {
  for (;;) {
    const min = 50000 + 4 * Math.floor(Math.random() * 3000);
    const ok = await Promise.all(
      [0, 2].map(
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

async function udp(): Promise<{ s: Socket; port: number; got: Array<{ data: string; port: number }> }> {
  const s = createSocket('udp4');
  const got: Array<{ data: string; port: number }> = [];
  s.on('message', (m, r) => got.push({ data: m.toString(), port: r.port }));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return { s, port: s.address().port, got };
}

async function waitFor<T>(f: () => Promise<T> | T, ok: (v: T) => boolean, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  let v = await f();
  while (!ok(v) && Date.now() < end) {
    await sleep(50);
    v = await f();
  }
  return v;
}

/** The (c=, m=audio) pairs found in the messages a sipp instance logged with -trace_msg, for messages it received. */
function sdpReceived(file: string): Array<{ addr: string; port: number }> {
  if (!existsSync(file)) return [];
  const out: Array<{ addr: string; port: number }> = [];
  for (const block of readFileSync(file, 'utf8').split(/-{5,}[^\n]*\n/)) {
    if (!/message received/i.test(block.split('\n')[0] ?? '')) continue; // sipp: "UDP message received [n] bytes :"
    const c = /c=IN IP4 (\S+)/.exec(block);
    const m = /m=audio (\d+)/.exec(block);
    if (c && m) out.push({ addr: c[1]!, port: Number(m[1]) });
  }
  return out;
}

function uasRelay(rtpport: number, tag: string) {
  return startListening(
    SIPP,
    (port) => [
      '-sf',
      join(SCEN, 'uas_relay.xml'),
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
      '-trace_msg',
      '-message_file',
      join(work, `${tag}-uas.msg`),
    ],
    { cwd: work },
  );
}
function uacRelay(env: CallEnv, scenario: string, csv: string, rtpport: number, tag: string, extra: string[] = []) {
  return runTool(
    SIPP,
    [
      '127.0.0.1:' + env.udpPort,
      '-sf',
      join(SCEN, scenario),
      '-inf',
      csv,
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
      '-trace_msg',
      '-message_file',
      join(work, `${tag}-uac.msg`),
      ...extra,
    ],
    work,
  );
}

test('rtprelay=always: each side sees the relay in its SDP, RTP passes both ways, the NATed caller is reached at its real source', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const min = await relayBlock();
  const env = await startRelayEnv({ rtpportmin: String(min), rtpportmax: String(min + 3), rtptimeout: '0' });
  try {
    await env.services.users.create({ username: 'ria', password: 'riapw1' });
    await env.services.users.create({ username: 'rob', password: 'robpw1' });
    const announced = await udp(); // the port A's SDP announces (its private view)
    const aReal = await udp(); // where A's media really come from (its NAT mapping)
    const bMedia = await udp();
    const callee = await uasRelay(bMedia.port, 'r1');
    registerAt(env, 'rob', callee.port);
    const caller = uacRelay(
      env,
      'uac_relay.xml',
      uacCsv(work, 'r1.csv', [['ria', 'riapw1', 'rob']]),
      announced.port,
      'r1',
      ['-d', '2500'],
    );
    await waitFor(
      () => env.sip.status('ria'),
      (s) => s === 4,
    );
    assert.equal(env.b2bua.media.size, 1, 'one relay session for the call');
    const relA = min; // allocated first: faces the caller
    const relB = min + 2; // faces the callee
    for (let i = 0; i < 20; i++) aReal.s.send(`a${i}`, relA, '127.0.0.1');
    await waitFor(
      () => bMedia.got.length,
      (n) => n >= 20,
      2000,
    );
    assert.equal(bMedia.got.length, 20, 'A → B through the relay');
    assert.ok(
      bMedia.got.every((g) => g.port === relB),
      'B receives from the relay socket its SDP names',
    );
    assert.equal(bMedia.got[19]!.data, 'a19');
    for (let i = 0; i < 10; i++) bMedia.s.send(`b${i}`, relB, '127.0.0.1');
    await waitFor(
      () => aReal.got.length,
      (n) => n >= 10,
      2000,
    );
    assert.equal(aReal.got.length, 10, 'B → A reaches the source A sends from (latched)');
    assert.ok(aReal.got.every((g) => g.port === relA));
    assert.equal(announced.got.length, 0, 'nothing to the address A announced');
    const [a, b] = await Promise.all([caller, callee.done]);
    assert.equal(a.code, 0, 'caller: ' + a.out.slice(-1500));
    assert.equal(b.code, 0, 'callee: ' + b.out.slice(-1500));
    // the SDP each sipp received: the relay, not the other party
    const uacSaw = sdpReceived(join(work, 'r1-uac.msg'));
    const uasSaw = sdpReceived(join(work, 'r1-uas.msg'));
    assert.ok(uacSaw.length >= 1, 'the caller received an SDP answer');
    assert.ok(uasSaw.length >= 1, 'the callee received an SDP offer');
    assert.deepEqual(uacSaw.at(-1), { addr: '127.0.0.1', port: relA }, "the caller's 200 points at the relay A socket");
    assert.deepEqual(
      uasSaw.at(-1),
      { addr: '127.0.0.1', port: relB },
      "the callee's INVITE points at the relay B socket",
    );
    const cdr = await waitFor(
      () => env.services.storage.db.selectFrom('tb_cdrs').selectAll().where('callee', '=', 'rob').execute(),
      (r) => r.length > 0,
    );
    assert.equal(cdr.length, 1);
    assert.match(cdr[0]!.reason, /^normal/);
    await waitFor(
      () => env.b2bua.media.size,
      (n) => n === 0,
      2000,
    );
    assert.equal(env.b2bua.media.size, 0, 'the relay ports are freed at call end');
    for (const x of [announced, aReal, bMedia]) x.s.close();
  } finally {
    await env.stop();
  }
});

test('RTP timeout: the caller vanishes (its RTP stops, no BYE) → after rtptimeout the server sends BYE both ways, CDR "rtp timeout"', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const min = await relayBlock();
  const env = await startRelayEnv({ rtpportmin: String(min), rtpportmax: String(min + 3), rtptimeout: '2' });
  try {
    await env.services.users.create({ username: 'vic', password: 'vicpw1' });
    await env.services.users.create({ username: 'wes', password: 'wespw1' });
    const aMedia = await udp();
    const bMedia = await udp();
    const callee = await uasRelay(bMedia.port, 'r2');
    registerAt(env, 'wes', callee.port);
    const caller = uacRelay(
      env,
      'uac_relay_cut.xml',
      uacCsv(work, 'r2.csv', [['vic', 'vicpw1', 'wes']]),
      aMedia.port,
      'r2',
    );
    await waitFor(
      () => env.sip.status('vic'),
      (s) => s === 4,
    );
    const t0 = Date.now();
    let stopA = false;
    let stopB = false;
    // both talk for 1.5 s (no timeout), then A vanishes while B goes on sending until the call ends
    const pump = (async () => {
      for (let i = 0; !stopB && i < 200; i++) {
        if (!stopA) aMedia.s.send('a', min, '127.0.0.1');
        bMedia.s.send('b', min + 2, '127.0.0.1');
        await sleep(50);
        if (Date.now() - t0 > 1500) stopA = true;
      }
    })();
    const [a, b] = await Promise.all([caller, callee.done]);
    stopB = true;
    await pump;
    const took = Date.now() - t0;
    assert.equal(a.code, 0, 'caller got the BYE: ' + a.out.slice(-1500));
    assert.equal(b.code, 0, 'callee got the BYE: ' + b.out.slice(-1500));
    assert.ok(took >= 3000 && took < 7000, `ended ${took} ms after connect (1.5 s of RTP + 2 s timeout)`);
    assert.ok(bMedia.got.length > 5, 'RTP passed while A was there');
    const cdr = await waitFor(
      () => env.services.storage.db.selectFrom('tb_cdrs').selectAll().where('callee', '=', 'wes').execute(),
      (r) => r.length > 0,
    );
    assert.equal(cdr.length, 1);
    assert.equal(cdr[0]!.reason, 'rtp timeout');
    assert.ok(cdr[0]!.duration >= 3 && cdr[0]!.duration <= 6, `duration ${cdr[0]!.duration}`);
    assert.equal(env.b2bua.live.list().length, 0);
    assert.equal(env.b2bua.media.size, 0);
    assert.equal(await env.sip.status('vic'), 1);
    aMedia.s.close();
    bMedia.s.close();
  } finally {
    await env.stop();
  }
});

test('re-INVITE through the relay: the hold offer and its answer are rewritten too (direction lines kept), the call ends normally', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const min = await relayBlock();
  const env = await startRelayEnv({ rtpportmin: String(min), rtpportmax: String(min + 3), rtptimeout: '0' });
  try {
    await env.services.users.create({ username: 'rex', password: 'rexpw1' });
    await env.services.users.create({ username: 'sue', password: 'suepw1' });
    const callee = await uas(work, 'uas_reinvite.xml', ['-trace_msg', '-message_file', join(work, 'r3-uas.msg')]);
    registerAt(env, 'sue', callee.port);
    const [a, b] = await Promise.all([
      uac(env, work, 'uac_reinvite.xml', uacCsv(work, 'r3.csv', [['rex', 'rexpw1', 'sue']]), 1, [
        '-d',
        '500',
        '-trace_msg',
        '-message_file',
        join(work, 'r3-uac.msg'),
      ]),
      callee.done,
    ]);
    assert.equal(a.code, 0, 'caller (its scenario checks a=recvonly in the answer): ' + a.out.slice(-1500));
    assert.equal(b.code, 0, 'callee (its scenario checks a=sendonly in the offer): ' + b.out.slice(-1500));
    const uacSaw = sdpReceived(join(work, 'r3-uac.msg'));
    const uasSaw = sdpReceived(join(work, 'r3-uas.msg'));
    assert.equal(uacSaw.length, 2, 'the caller received two SDP answers (INVITE, re-INVITE)');
    assert.equal(uasSaw.length, 2, 'the callee received two SDP offers');
    assert.ok(
      uacSaw.every((x) => x.addr === '127.0.0.1' && x.port === min),
      JSON.stringify(uacSaw),
    );
    assert.ok(
      uasSaw.every((x) => x.addr === '127.0.0.1' && x.port === min + 2),
      JSON.stringify(uasSaw),
    );
    await waitFor(
      () => env.b2bua.media.size,
      (n) => n === 0,
      2000,
    );
    assert.equal(env.b2bua.media.size, 0);
  } finally {
    await env.stop();
  }
});
