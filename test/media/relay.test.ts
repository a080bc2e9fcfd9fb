/** The RTP relay with real UDP sockets: forwarding both ways, NAT latching, drop of foreign sources, RTP timeout. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { RtpRelay } from '../../src/sip/media/relay.js';
import { CallMedia, isPrivateAddress, behindNat, uriHost } from '../../src/sip/media/calls.js';
import { parseSdp } from '../../src/sip/media/sdp.js';
import { parseMessage } from '../../src/sip/message/index.js';
import { isIP } from 'node:net';
import type { Services } from '../../src/services.js';

const base = () => 47000 + 2 * Math.floor(Math.random() * 4000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function udp(): Promise<{ s: Socket; port: number; got: Array<{ data: string; port: number }> }> {
  const s = createSocket('udp4');
  const got: Array<{ data: string; port: number }> = [];
  s.on('message', (m, r) => got.push({ data: m.toString(), port: r.port }));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return { s, port: s.address().port, got };
}
const sdp = (port: number, dir = 'sendrecv', addr = '127.0.0.1') =>
  Buffer.from(
    `v=0\r\no=x 1 1 IN IP4 ${addr}\r\ns=-\r\nc=IN IP4 ${addr}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=${dir}\r\n`,
  );
async function until(f: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!f() && Date.now() < end) await sleep(10);
}

test('forwarding both ways through the relay; each side sees the relay socket facing it', async () => {
  const min = base();
  const relay = new RtpRelay({ min, max: min + 100, bindAddr: '127.0.0.1', timeoutSeconds: 0 });
  const A = await udp();
  const B = await udp();
  const s = await relay.open('127.0.0.1');
  const toB = parseSdp(s.sdp('a', sdp(A.port)))[0]!; // A's offer as B receives it
  const toA = parseSdp(s.sdp('b', sdp(B.port)))[0]!; // B's answer as A receives it
  assert.equal(toB.port, s.ports('b')[0]);
  assert.equal(toA.port, s.ports('a')[0]);
  assert.notEqual(toA.port, toB.port);
  A.s.send('hello from A', toA.port, '127.0.0.1');
  await until(() => B.got.length > 0);
  assert.deepEqual(B.got[0], { data: 'hello from A', port: toB.port }, 'B gets it from the relay B socket');
  B.s.send('hello from B', toB.port, '127.0.0.1');
  await until(() => A.got.length > 0);
  assert.deepEqual(A.got[0], { data: 'hello from B', port: toA.port });
  for (let i = 0; i < 50; i++) A.s.send(`pkt${i}`, toA.port, '127.0.0.1');
  await until(() => B.got.length >= 51);
  assert.equal(B.got.length, 51);
  assert.equal(B.got.at(-1)!.data, 'pkt49', 'in order, payload unchanged');
  assert.equal(s.received('a'), 51);
  assert.equal(s.received('b'), 1);
  s.release();
  assert.equal(relay.pool.inUse, 0);
  A.s.close();
  B.s.close();
});

test("RTCP beside RTP: from each side to the other side's RTCP port (a=rtcp: or RTP + 1), rewritten in the SDP", async () => {
  const min = base();
  const relay = new RtpRelay({ min, max: min + 100, bindAddr: '127.0.0.1', timeoutSeconds: 0 });
  const A = await udp();
  const B = await udp();
  const Artcp = await udp();
  const Brtcp = await udp();
  const s = await relay.open('127.0.0.1');
  // A names its RTCP port (RFC 3605); B's RTCP is at its RTP port + 1 by convention: a socket there
  const offer = Buffer.from(sdp(A.port).toString() + `a=rtcp:${Artcp.port} IN IP4 127.0.0.1\r\n`);
  const toB = s.sdp('a', offer);
  assert.match(toB.toString(), new RegExp(`a=rtcp:${s.ports('b')[0]! + 1} IN IP4 127\\.0\\.0\\.1`));
  const bPort = Brtcp.port - 1; // B's RTP port: the one below its RTCP socket
  s.sdp('b', sdp(bPort));
  const relayA = s.ports('a')[0]!;
  const relayB = s.ports('b')[0]!;
  Artcp.s.send('rtcp from A', relayA + 1, '127.0.0.1');
  await until(() => Brtcp.got.length > 0);
  assert.deepEqual(Brtcp.got[0], { data: 'rtcp from A', port: relayB + 1 }, 'B gets it from the relay RTCP socket');
  Brtcp.s.send('rtcp from B', relayB + 1, '127.0.0.1');
  await until(() => Artcp.got.length > 0);
  assert.deepEqual(Artcp.got[0], { data: 'rtcp from B', port: relayA + 1 });
  assert.equal(A.got.length + B.got.length, 0, 'nothing on the RTP sockets');
  assert.equal(s.received('a'), 0, 'RTCP is not counted as media');
  s.release();
  for (const x of [A, B, Artcp, Brtcp]) x.s.close();
});

test('NAT latching: A announces a private address, its packets come from elsewhere; B reaches the real source, a third party is ignored', async () => {
  const min = base();
  const relay = new RtpRelay({ min, max: min + 100, bindAddr: '127.0.0.1', timeoutSeconds: 0 });
  const A = await udp(); // A's real (NATed) socket
  const B = await udp();
  const evil = await udp();
  const s = await relay.open('127.0.0.1');
  s.sdp('a', sdp(4000, 'sendrecv', '192.168.1.20')); // unreachable announced address
  s.sdp('b', sdp(B.port));
  const relA = s.ports('a')[0]!;
  const relB = s.ports('b')[0]!;
  assert.deepEqual(s.peer('a'), { host: '192.168.1.20', port: 4000, latched: false });
  A.s.send('rtp', relA, '127.0.0.1');
  await until(() => B.got.length > 0);
  assert.deepEqual(s.peer('a'), { host: '127.0.0.1', port: A.port, latched: true }, 'latched on the first packet');
  B.s.send('back', relB, '127.0.0.1');
  await until(() => A.got.length > 0);
  assert.equal(A.got[0]!.data, 'back', 'B reaches A at its real source, not the SDP address');
  evil.s.send('inject', relA, '127.0.0.1');
  await sleep(100);
  assert.equal(B.got.length, 1, 'packets from a foreign source after latching are dropped');
  // the same SDP again (session refresh) keeps the latch
  s.sdp('a', sdp(4000, 'sendrecv', '192.168.1.20'));
  assert.deepEqual(
    s.peer('a'),
    { host: '127.0.0.1', port: A.port, latched: true },
    'a refresh with the same SDP keeps the latch',
  );
  evil.s.send('inject2', relA, '127.0.0.1');
  await sleep(100);
  assert.equal(B.got.length, 1);
  // a new SDP from A (re-INVITE, moved) unlatches: the next source is learnt again
  s.sdp('a', sdp(5000, 'sendrecv', '192.168.1.20'));
  evil.s.send('moved', relA, '127.0.0.1');
  await until(() => B.got.length > 1);
  assert.equal(B.got[1]!.data, 'moved');
  assert.equal(s.peer('a')!.port, evil.port);
  s.release();
  for (const x of [A, B, evil]) x.s.close();
});

test('RTP timeout: armed at connect; fires once when a sending side stays silent; not for a side on hold', async () => {
  const min = base();
  const relay = new RtpRelay({ min, max: min + 100, bindAddr: '127.0.0.1', timeoutSeconds: 1, checkMs: 100 });
  const A = await udp();
  const B = await udp();
  const s = await relay.open('127.0.0.1');
  s.sdp('a', sdp(A.port));
  s.sdp('b', sdp(B.port));
  let fired = 0;
  s.arm(() => fired++);
  const relA = s.ports('a')[0]!;
  const relB = s.ports('b')[0]!;
  // both stream for 1.5 s: no timeout
  for (let i = 0; i < 15; i++) {
    A.s.send('a', relA, '127.0.0.1');
    B.s.send('b', relB, '127.0.0.1');
    await sleep(100);
  }
  assert.equal(fired, 0, 'no timeout while both send');
  // A vanishes, B keeps sending: the timeout fires for the silent caller
  const t0 = Date.now();
  while (!fired && Date.now() - t0 < 3000) {
    B.s.send('b', relB, '127.0.0.1');
    await sleep(100);
  }
  assert.equal(fired, 1);
  assert.ok(Date.now() - t0 >= 800 && Date.now() - t0 < 2500, `fired after ${Date.now() - t0} ms`);
  await sleep(300);
  assert.equal(fired, 1, 'only once');
  s.release();

  // hold: A put the call on hold (sendonly), B answered recvonly: B is not expected to send
  const h = await relay.open('127.0.0.1');
  h.sdp('a', sdp(A.port, 'sendonly'));
  h.sdp('b', sdp(B.port, 'recvonly'));
  let held = 0;
  h.arm(() => held++);
  for (let i = 0; i < 15; i++) {
    A.s.send('moh', h.ports('a')[0]!, '127.0.0.1');
    await sleep(100);
  }
  assert.equal(held, 0, 'a held callee that sends nothing is not timed out');
  h.release();
  A.s.close();
  B.s.close();
});

test('timeout 0 disables the check', async () => {
  const min = base();
  const relay = new RtpRelay({ min, max: min + 10, bindAddr: '127.0.0.1', timeoutSeconds: 0, checkMs: 50 });
  const s = await relay.open('127.0.0.1');
  s.sdp('a', sdp(4000));
  let fired = 0;
  s.arm(() => fired++);
  await sleep(400);
  assert.equal(fired, 0);
  s.release();
});

test('policy: private addresses, NAT detection, CallMedia decides by rtprelay and passes non-relayed bodies through', async () => {
  for (const ip of [
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.0.1',
    '100.64.0.1',
    '169.254.1.1',
    'fd00::1',
    'fe80::1',
  ])
    assert.equal(isPrivateAddress(ip), true, ip);
  for (const ip of ['8.8.8.8', '172.32.0.1', '127.0.0.1', '203.0.113.7', '2001:db8::1', 'example.com'])
    assert.equal(isPrivateAddress(ip), false, ip);
  assert.equal(uriHost('<sip:alice@192.168.1.20:5062;transport=udp>'), '192.168.1.20');
  assert.equal(uriHost('sip:[fd00::5]:5060'), 'fd00::5');
  assert.equal(behindNat('203.0.113.7', ['192.168.1.20']), true);
  assert.equal(behindNat('192.168.1.20', ['192.168.1.20']), false, 'a LAN phone talking directly is not NATed');
  assert.equal(behindNat('203.0.113.7', ['203.0.113.7']), false);

  const options: Record<string, unknown> = {
    rtprelay: 'nat',
    rtpportmin: base(),
    rtpportmax: 0,
    rtpaddress: '198.51.100.9',
    rtptimeout: 60,
    sipbindaddr: '127.0.0.1',
  };
  options.rtpportmax = (options.rtpportmin as number) + 20;
  const services = { config: { options }, log: { warn: () => undefined } } as unknown as Services;
  const media = new CallMedia(services);
  const body = sdp(4000, 'sendrecv', '192.168.1.20').toString();
  const inv = (contactHost: string) =>
    (
      parseMessage(
        Buffer.from(
          `INVITE sip:bob@h SIP/2.0\r\nVia: SIP/2.0/UDP ${contactHost};branch=z9hG4bK1\r\nFrom: <sip:alice@h>;tag=1\r\nTo: <sip:bob@h>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@${contactHost}:5060>\r\nContent-Type: application/sdp\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        ),
      ) as unknown as { msg: never }
    ).msg;
  const src = (ip: string) => ({ transport: 'udp' as const, ip, port: 5060, localIp: '127.0.0.1', localPort: 5060 });
  assert.equal(media.wants(inv('192.168.1.20'), src('203.0.113.7'), []), true, 'NATed caller');
  const lan = inv('192.168.1.20');
  (lan as { body: Buffer }).body = sdp(4000, 'sendrecv', '192.168.1.20');
  assert.equal(
    media.wants(lan, src('192.168.1.20'), []),
    false,
    'a LAN phone: Contact and SDP equal its source address',
  );
  assert.equal(media.wants(lan, src('203.0.113.7'), [{ contact: 'sip:bob@203.0.113.8', srcIp: '203.0.113.8' }]), true);
  assert.equal(
    media.wants(inv('203.0.113.7'), src('203.0.113.7'), [{ contact: 'sip:bob@10.0.0.8:5060', srcIp: '198.51.100.1' }]),
    true,
    'NATed callee',
  );
  (lan as { body: Buffer }).body = sdp(4000, 'sendrecv', '203.0.113.7');
  assert.equal(
    media.wants(inv('203.0.113.7'), src('203.0.113.7'), [{ contact: 'sip:bob@198.51.100.1', srcIp: '198.51.100.1' }]),
    true,
    'the SDP of inv() is private',
  );
  options.rtprelay = 'off';
  assert.equal(media.wants(inv('192.168.1.20'), src('203.0.113.7'), []), false);
  options.rtprelay = 'always';
  const call = {};
  await media.prepare(call, inv('192.168.1.20'), src('203.0.113.7'));
  assert.ok(media.session(call), 'relayed');
  const out = parseSdp(media.sdp(call, 'a', sdp(4000, 'sendrecv', '192.168.1.20'), 'application/sdp'))[0]!;
  assert.equal(out.address, '198.51.100.9', 'rtpaddress is written into the SDP');
  assert.equal(out.port, media.session(call)!.ports('b')[0]);
  media.release(call);
  assert.equal(media.size, 0);
  const late = {};
  media.release(late); // ended before prepare finished
  await media.prepare(late, inv('192.168.1.20'), src('203.0.113.7'));
  assert.equal(media.session(late), undefined, 'no session for a call already ended');
  const plain = {};
  const b = sdp(4000);
  assert.equal(media.sdp(plain, 'a', b, 'application/sdp'), b, 'a call without relay passes the body through');
  media.close();
});

test('rtpaddress default: the SIP local address, or for a wildcard bind a real interface address', async () => {
  const { localMediaAddress } = await import('../../src/sip/media/calls.js');
  assert.equal(localMediaAddress('192.0.2.10'), '192.0.2.10');
  assert.equal(localMediaAddress('::ffff:192.0.2.10'), '192.0.2.10');
  const w = localMediaAddress('0.0.0.0');
  assert.notEqual(w, '0.0.0.0');
  assert.equal(isIP(w), 4);
});
