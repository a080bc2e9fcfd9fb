// Real UDP sockets on 127.0.0.1: server and client transactions, RFC 3581, errors, bans, limits.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createResponse, serialize } from '../../../src/sip/message/index.js';
import type { SipRequest, SipResponse } from '../../../src/sip/message/index.js';
import { SipStack } from '../../../src/sip/stack.js';
import type { ServerTransaction, SipSource } from '../../../src/sip/stack.js';
import { UdpPeer, firstLine, parseAny, parseReq, parseRes, rawRequest, sleep } from './helpers.js';
import { eventually } from '../../helpers/wait.js';

let stack: SipStack;
let port = 0;
const banned = new Set<string>();
const seen: Array<{ req: SipRequest; src: SipSource; tx: ServerTransaction }> = [];
const acks: SipRequest[] = [];

before(async () => {
  stack = new SipStack({
    bindAddr: '127.0.0.1',
    udpPort: 0,
    tcpPort: -1,
    maxMessageSize: 4000,
    maxConnections: 10,
    isBanned: (ip) => banned.has(ip),
    timers: { T1: 20, T2: 160, T4: 200 },
  });
  stack.onRequest((req, tx, src) => {
    seen.push({ req, src, tx });
    const user = req.ruri?.kind === 'sip' ? req.ruri.user : null;
    if (user === 'silent') return; // let the INVITE transaction send 100 Trying
    if (user === 'busy') return tx.respond(createResponse(req, 486));
    tx.respond(createResponse(req, 200));
  });
  stack.onAck((req) => acks.push(req));
  const l = await stack.start();
  assert.equal(l.length, 1);
  assert.equal(l[0]!.transport, 'udp');
  port = l[0]!.port;
  assert.ok(port > 0);
  assert.deepEqual(stack.localAddress('udp'), { host: '127.0.0.1', port });
  assert.equal(stack.localAddress('tcp'), undefined);
});

after(async () => {
  await stack.stop();
});

test('UDP OPTIONS → 200 with received/rport stamped on the top Via (RFC 3581)', async () => {
  const peer = await new UdpPeer().bind();
  try {
    // sent-by claims another host and port: the response must still reach us via rport.
    peer.send(rawRequest({ host: '192.0.2.55', port: 5088, branch: 'z9hG4bKudp1' }), port);
    await peer.until((i) => i.length >= 1);
    const res = parseRes(peer.inbox[0]!);
    assert.equal(res.status, 200);
    const via = res.core!.via[0]!;
    assert.equal(via.received, '127.0.0.1');
    assert.equal(via.rport, peer.port);
    assert.equal(via.host, '192.0.2.55');
    const last = seen[seen.length - 1]!;
    assert.deepEqual(
      { ...last.src },
      { transport: 'udp', ip: '127.0.0.1', port: peer.port, localIp: '127.0.0.1', localPort: port },
    );
  } finally {
    peer.close();
  }
});

test('UDP retransmission reaches the TU once and gets the cached final again', async () => {
  const peer = await new UdpPeer().bind();
  try {
    const text = rawRequest({ port: 1, branch: 'z9hG4bKudp2', uri: 'sip:once@127.0.0.1' });
    const n = seen.length;
    peer.send(text, port);
    await peer.until((i) => i.length >= 1);
    peer.send(text, port);
    await peer.until((i) => i.length >= 2);
    assert.equal(seen.length, n + 1);
    assert.ok(peer.inbox[0]!.equals(peer.inbox[1]!));
  } finally {
    peer.close();
  }
});

test('malformed requests are answered statelessly (400 / 505), malformed responses and garbage dropped', async () => {
  const peer = await new UdpPeer().bind();
  try {
    const n = seen.length;
    peer.send(rawRequest({ branch: 'z9hG4bKbad1' }).replace('CSeq: 1 OPTIONS', 'CSeq: x OPTIONS'), port);
    await peer.until((i) => i.length >= 1);
    assert.equal(firstLine(peer.inbox[0]!), 'SIP/2.0 400 Malformed CSeq header');
    peer.send(rawRequest({ branch: 'z9hG4bKbad2' }).replace('SIP/2.0\r\n', 'SIP/7.0\r\n'), port);
    await peer.until((i) => i.length >= 2);
    assert.equal(parseRes(peer.inbox[1]!).status, 505);
    peer.send(rawRequest({ branch: 'z9hG4bKbad3' }).replace(/Call-ID: [^\r]*\r\n/, ''), port);
    await peer.until((i) => i.length >= 3);
    const r3 = parseRes(peer.inbox[2]!);
    assert.equal(r3.status, 400);
    assert.equal(r3.reason, 'Missing Call-ID header');
    peer.send('SIP/2.0 200 OK\r\nVia: broken\r\n\r\n', port);
    peer.send(Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8]), port);
    peer.send('\r\n\r\n', port);
    await sleep(100);
    assert.equal(peer.inbox.length, 3);
    assert.equal(seen.length, n, 'nothing reached the TU');
  } finally {
    peer.close();
  }
});

test('oversized datagram → 513', async () => {
  const peer = await new UdpPeer().bind();
  try {
    peer.send(
      rawRequest({
        method: 'MESSAGE',
        branch: 'z9hG4bKbig',
        body: 'x'.repeat(5000),
        extra: ['Content-Type: text/plain'],
      }),
      port,
    );
    await peer.until((i) => i.length >= 1);
    assert.equal(parseRes(peer.inbox[0]!).status, 513);
  } finally {
    peer.close();
  }
});

test('banned sources are dropped silently', async () => {
  const peer = await new UdpPeer().bind();
  banned.add('127.0.0.1');
  try {
    const n = seen.length;
    peer.send(rawRequest({ branch: 'z9hG4bKban' }), port);
    await sleep(150);
    assert.equal(peer.inbox.length, 0);
    assert.equal(seen.length, n);
  } finally {
    banned.clear();
    peer.close();
  }
});

test('INVITE: 100 Trying from the stack, then ACK for a non-2xx absorbed / ACK for 2xx to onAck', async () => {
  const peer = await new UdpPeer().bind();
  try {
    peer.send(rawRequest({ method: 'INVITE', uri: 'sip:silent@127.0.0.1', branch: 'z9hG4bKinv1' }), port);
    await peer.until((i) => i.length >= 1);
    assert.equal(firstLine(peer.inbox[0]!), 'SIP/2.0 100 Trying');
    const tx = seen[seen.length - 1]!.tx;
    assert.equal(tx.state, 'proceeding');
    tx.respond(createResponse(tx.request, 486));
    await peer.until((i) => i.length >= 3); // 486 + at least one Timer G retransmission (T1 = 20 ms)
    assert.equal(parseRes(peer.inbox[1]!).status, 486);
    assert.equal(parseRes(peer.inbox[2]!).status, 486);
    const nAck = acks.length;
    peer.send(rawRequest({ method: 'ACK', uri: 'sip:silent@127.0.0.1', branch: 'z9hG4bKinv1' }), port);
    await eventually(() => tx.state === 'confirmed', 'the ACK confirmed the transaction');
    assert.equal(tx.state, 'confirmed');
    assert.equal(acks.length, nAck, 'ACK for non-2xx is absorbed');
    const count = peer.inbox.length;
    await sleep(150);
    assert.equal(peer.inbox.length, count, 'retransmissions stopped');
    peer.send(rawRequest({ method: 'ACK', uri: 'sip:silent@127.0.0.1', branch: 'z9hG4bKack2xx', toTag: 'x' }), port);
    await eventually(() => acks.length > nAck, 'the ACK for the 2xx reached onAck');
    assert.equal(acks.length, nAck + 1, 'ACK with its own branch goes to onAck');
  } finally {
    peer.close();
  }
});

test('client transaction over UDP: request reaches the peer, response → final', async () => {
  const peer = await new UdpPeer().bind();
  try {
    const req = parseReq(
      rawRequest({
        method: 'MESSAGE',
        uri: `sip:bob@127.0.0.1:${peer.port}`,
        body: 'hello',
        extra: ['Content-Type: text/plain'],
      }),
    );
    const tuReq: SipRequest = { ...req, headers: req.headers.filter((h) => h.name !== 'Via'), core: undefined };
    const tx = stack.request(tuReq, { transport: 'udp', host: '127.0.0.1', port: peer.port });
    const final = new Promise<SipResponse>((resolve) => tx.once('final', resolve));
    await peer.until((i) => i.length >= 1);
    const got = parseReq(peer.inbox[0]!);
    assert.equal(got.method, 'MESSAGE');
    assert.equal(got.body.toString(), 'hello');
    assert.equal(got.core!.via[0]!.port, port);
    peer.send(serialize(createResponse(got, 200)), port);
    assert.equal((await final).status, 200);
  } finally {
    peer.close();
  }
});

test('client transaction over UDP: retransmits (Timer E) then times out (Timer F)', async () => {
  const peer = await new UdpPeer().bind();
  try {
    const req = parseReq(rawRequest({ method: 'OPTIONS', uri: `sip:bob@127.0.0.1:${peer.port}` }));
    const tuReq: SipRequest = { ...req, headers: req.headers.filter((h) => h.name !== 'Via'), core: undefined };
    const t0 = Date.now();
    const tx = stack.request(tuReq, { transport: 'udp', host: '127.0.0.1', port: peer.port });
    await new Promise<void>((resolve) => tx.once('timeout', () => resolve()));
    const dt = Date.now() - t0;
    assert.ok(dt >= 64 * 20 - 5 && dt < 3000, 'Timer F ≈ 64*T1, got ' + dt);
    assert.ok(peer.inbox.length >= 5, 'retransmitted: ' + peer.inbox.length);
    const branches = new Set(peer.inbox.map((b) => (parseAny(b) as SipRequest).core!.via[0]!.branch));
    assert.equal(branches.size, 1, 'retransmissions keep the branch');
  } finally {
    peer.close();
  }
});
