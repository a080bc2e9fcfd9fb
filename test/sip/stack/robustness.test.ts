// Garbage and hostile input over real sockets: the stack never throws, keeps serving, and answers
// only what can be answered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createResponse } from '../../../src/sip/message/index.js';
import { SipStack } from '../../../src/sip/stack.js';
import { StreamPeer, UdpPeer, parseRes, rawRequest, sleep } from './helpers.js';

function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

test('random and mutated datagrams / stream bytes: no crash, still serving afterwards', async () => {
  const warnings: string[] = [];
  const st = new SipStack({
    bindAddr: '127.0.0.1',
    udpPort: 0,
    tcpPort: 0,
    maxMessageSize: 8000,
    maxConnections: 50,
    log: { warn: (_o, m) => warnings.push(m) },
  });
  let handled = 0;
  st.onRequest((req, tx) => {
    handled++;
    tx.respond(createResponse(req, 200));
  });
  const ls = await st.start();
  const udpPort = ls.find((l) => l.transport === 'udp')!.port;
  const tcpPort = ls.find((l) => l.transport === 'tcp')!.port;
  const r = rng(42);
  const base = Buffer.from(rawRequest({ method: 'INVITE', body: 'v=0\r\n', extra: ['Content-Type: application/sdp'] }));
  const udp = await new UdpPeer().bind();
  try {
    for (let i = 0; i < 1500; i++) {
      const b = Buffer.from(base);
      const n = 1 + Math.floor(r() * 6);
      for (let k = 0; k < n; k++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
      udp.send(
        i % 5 === 0 ? Buffer.from(Array.from({ length: Math.floor(r() * 300) }, () => Math.floor(r() * 256))) : b,
        udpPort,
      );
      if (i % 100 === 0) await sleep(5);
    }
    for (let c = 0; c < 10; c++) {
      const p = await StreamPeer.connect(tcpPort);
      const b = Buffer.from(base);
      for (let k = 0; k < 5; k++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
      p.send(b);
      p.send(Buffer.from(Array.from({ length: 200 }, () => Math.floor(r() * 256))));
      await sleep(5);
      p.close();
    }
    await sleep(300);
    // Still serving on both transports.
    const before = handled;
    const u2 = await new UdpPeer().bind();
    u2.send(rawRequest({ branch: 'z9hG4bKafterfuzz' }), udpPort);
    await u2.until((i) => i.length >= 1);
    assert.equal(parseRes(u2.inbox[0]!).status, 200);
    u2.close();
    const p = await StreamPeer.connect(tcpPort);
    p.send(rawRequest({ transport: 'TCP', branch: 'z9hG4bKafterfuzz2' }));
    await p.until(() => p.inbox.length >= 1);
    p.close();
    assert.equal(handled, before + 2);
    assert.ok(!warnings.includes('SIP request handler threw'));
  } finally {
    udp.close();
    await st.stop();
  }
});

test('a stream message larger than maxMessageSize closes the connection; banned TCP peers are refused', async () => {
  let ban = false;
  const st = new SipStack({
    bindAddr: '127.0.0.1',
    udpPort: -1,
    tcpPort: 0,
    maxMessageSize: 1000,
    maxConnections: 10,
    isBanned: () => ban,
  });
  st.onRequest((req, tx) => tx.respond(createResponse(req, 200)));
  const [l] = await st.start();
  try {
    const p = await StreamPeer.connect(l!.port);
    p.send(
      rawRequest({ method: 'MESSAGE', transport: 'TCP', body: 'x'.repeat(2000), extra: ['Content-Type: text/plain'] }),
    );
    await p.until(() => p.closed);
    assert.equal(p.inbox.length, 0);
    ban = true;
    const q = await new Promise<StreamPeer>((resolve, reject) => {
      const s = net.connect(l!.port, '127.0.0.1', () => resolve(new StreamPeer(s)));
      s.once('error', reject);
    });
    q.send(rawRequest({ transport: 'TCP' }));
    await q.until(() => q.closed);
    assert.equal(q.inbox.length, 0);
    assert.equal(st.connections(), 0);
  } finally {
    await st.stop();
  }
});
