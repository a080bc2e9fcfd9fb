// Resource limits of the SIP stack: header count per message, connections per address, and a message whose
// body never completes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createResponse, parseMessage, MAX_HEADERS } from '../../../src/sip/message/index.js';
import { SipStack } from '../../../src/sip/stack.js';
import { StreamPeer, UdpPeer, parseRes, rawRequest, sleep } from './helpers.js';

function withHeaders(n: number): string {
  const extra = Array.from({ length: n }, (_, i) => `X-H${i}: v`);
  return rawRequest({ extra });
}

test('the parser refuses more than MAX_HEADERS header fields with 400', () => {
  const ok = parseMessage(Buffer.from(withHeaders(MAX_HEADERS - 20)));
  assert.equal(ok.ok, true);
  const r = parseMessage(Buffer.from(withHeaders(10_000)));
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.status === 400 && /Too many header fields/.test(r.reason), JSON.stringify(!r.ok && r.reason));
});

test('2,000 headers in one datagram are answered 400; the stack keeps serving', async () => {
  const st = new SipStack({
    bindAddr: '127.0.0.1',
    udpPort: 0,
    tcpPort: -1,
    maxMessageSize: 1_048_576,
    maxConnections: 10,
  });
  let handled = 0;
  st.onRequest((req, tx) => {
    handled++;
    tx.respond(createResponse(req, 200));
  });
  const [l] = await st.start();
  const udp = await new UdpPeer().bind();
  try {
    udp.send(withHeaders(2_000), l!.port); // 2,000 fields (a 10,000-field datagram exceeds UDP's 64 KiB)
    await udp.until((i) => i.length >= 1);
    assert.equal(parseRes(udp.inbox[0]!).status, 400);
    assert.equal(handled, 0);
    udp.send(rawRequest({ branch: 'z9hG4bKafterheaders' }), l!.port);
    await udp.until((i) => i.length >= 2);
    assert.equal(parseRes(udp.inbox[1]!).status, 200);
  } finally {
    udp.close();
    await st.stop();
  }
});

test('connections per address are capped; a body that never completes is closed', async () => {
  const st = new SipStack({
    bindAddr: '127.0.0.1',
    udpPort: -1,
    tcpPort: 0,
    maxMessageSize: 65535,
    maxConnections: 100,
    maxConnectionsPerIp: 3,
    silentTimeoutMs: 1500,
  });
  st.onRequest((req, tx) => tx.respond(createResponse(req, 200)));
  const [l] = await st.start();
  const peers: StreamPeer[] = [];
  try {
    for (let i = 0; i < 3; i++) peers.push(await StreamPeer.connect(l!.port));
    await sleep(100);
    const fourth = await StreamPeer.connect(l!.port);
    await fourth.until(() => fourth.closed);
    assert.equal(st.connections(), 3, 'the fourth connection from the same address is refused');
    // headers announce 100 bytes of body, 10 arrive: closed after the timeout, not held forever
    const head = rawRequest({
      method: 'MESSAGE',
      transport: 'TCP',
      body: 'x'.repeat(100),
      extra: ['Content-Type: text/plain'],
    });
    peers[0]!.send(head.slice(0, head.length - 90));
    const t0 = Date.now();
    await peers[0]!.until(() => peers[0]!.closed);
    assert.ok(Date.now() - t0 < 5_000);
    await sleep(100);
    const again = await StreamPeer.connect(l!.port);
    again.send(rawRequest({ transport: 'TCP', branch: 'z9hG4bKcapfree' }));
    await again.until(() => again.inbox.length >= 1);
    peers.push(again);
  } finally {
    for (const p of peers) p.close();
    await st.stop();
  }
});
