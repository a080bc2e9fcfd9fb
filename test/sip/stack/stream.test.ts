// Real TCP and TLS sockets on 127.0.0.1: framing, keep-alives, connection reuse, limits, timeouts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { createResponse, serialize } from '../../../src/sip/message/index.js';
import type { SipRequest, SipResponse } from '../../../src/sip/message/index.js';
import { SipStack } from '../../../src/sip/stack.js';
import type { SipSource } from '../../../src/sip/stack.js';
import { StreamPeer, firstLine, parseReq, parseRes, rawRequest, selfSigned, sleep } from './helpers.js';
import { eventually } from '../../helpers/wait.js';

let stack: SipStack;
let tcpPort = 0;
let tlsPort = 0;
const seen: Array<{ req: SipRequest; src: SipSource }> = [];
let tlsCreds: { cert: Buffer; key: Buffer };

before(async () => {
  tlsCreds = selfSigned();
  stack = new SipStack({
    bindAddr: '127.0.0.1',
    udpPort: -1,
    tcpPort: 0,
    tlsPort: 0,
    tls: tlsCreds,
    maxMessageSize: 4000,
    maxConnections: 4,
    silentTimeoutMs: 400,
    tlsClient: { ca: tlsCreds.cert },
  });
  stack.onRequest((req, tx, src) => {
    seen.push({ req, src });
    tx.respond(createResponse(req, 200));
  });
  const l = await stack.start();
  tcpPort = l.find((x) => x.transport === 'tcp')!.port;
  tlsPort = l.find((x) => x.transport === 'tls')!.port;
  assert.ok(tcpPort > 0 && tlsPort > 0);
});

after(async () => {
  await stack.stop();
});

async function untilZero(ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (stack.connections() > 0 && Date.now() < end) await sleep(10);
}

test('TCP: request → 200 on the same connection; src carries connId; rport/received stamped', async () => {
  const p = await StreamPeer.connect(tcpPort);
  try {
    p.send(rawRequest({ transport: 'TCP', host: 'client.invalid', branch: 'z9hG4bKtcp1' }));
    await p.until(() => p.inbox.length >= 1);
    const res = parseRes(p.inbox[0]!);
    assert.equal(res.status, 200);
    assert.equal(res.core!.via[0]!.received, '127.0.0.1');
    assert.equal(res.core!.via[0]!.rport, p.sock.localPort);
    const src = seen[seen.length - 1]!.src;
    assert.equal(src.transport, 'tcp');
    assert.ok(src.connId?.startsWith('tcp:'));
    assert.equal(src.port, p.sock.localPort);
    assert.equal(stack.connections(), 1);
  } finally {
    p.close();
  }
  await untilZero();
  assert.equal(stack.connections(), 0);
});

test('TCP: CRLFCRLF ping → CRLF pong; pipelined and byte-by-byte messages are framed', async () => {
  const p = await StreamPeer.connect(tcpPort);
  try {
    p.send('\r\n\r\n');
    await p.until(() => p.raw.length >= 1);
    assert.equal(Buffer.concat(p.raw).toString(), '\r\n');
    p.send(
      rawRequest({ transport: 'TCP', branch: 'z9hG4bKpipe1' }) +
        rawRequest({ transport: 'TCP', branch: 'z9hG4bKpipe2' }),
    );
    await p.until(() => p.inbox.length >= 2);
    const slow = Buffer.from(
      rawRequest({
        method: 'MESSAGE',
        transport: 'TCP',
        branch: 'z9hG4bKslow',
        body: 'hi there',
        extra: ['Content-Type: text/plain'],
      }),
    );
    for (let i = 0; i < slow.length; i += 7) {
      p.send(slow.subarray(i, i + 7));
      await sleep(1);
    }
    await p.until(() => p.inbox.length >= 3);
    assert.equal(seen[seen.length - 1]!.req.body.toString(), 'hi there');
  } finally {
    p.close();
  }
});

test('TCP: a stack request with connId reuses the client connection (NAT)', async () => {
  const p = await StreamPeer.connect(tcpPort);
  try {
    p.send(rawRequest({ method: 'REGISTER', transport: 'TCP', branch: 'z9hG4bKreg' }));
    await p.until(() => p.inbox.length >= 1);
    const src = seen[seen.length - 1]!.src;
    const msg = parseReq(rawRequest({ method: 'MESSAGE', body: 'to you', extra: ['Content-Type: text/plain'] }));
    // host/port are unreachable on purpose: only the connection can deliver it.
    const tx = stack.request(
      { ...msg, headers: msg.headers.filter((h) => h.name !== 'Via'), core: undefined },
      { transport: 'tcp', host: '192.0.2.1', port: 9, connId: src.connId },
    );
    const final = new Promise<SipResponse>((r) => tx.once('final', r));
    await p.until(() => p.inbox.length >= 2);
    const got = parseReq(p.inbox[1]!);
    assert.equal(got.method, 'MESSAGE');
    assert.equal(got.core!.via[0]!.transport, 'TCP');
    p.send(serialize(createResponse(got, 200)));
    assert.equal((await final).status, 200);
  } finally {
    p.close();
  }
});

test('TCP: framing error (no Content-Length) closes the connection; parse error answers 400 and keeps it', async () => {
  const p = await StreamPeer.connect(tcpPort);
  try {
    p.send(
      rawRequest({ transport: 'TCP', branch: 'z9hG4bKbadasp' }).replace(
        'To: <sip:bob@127.0.0.1>',
        'To: <sip:bob@127.0.0.1 >',
      ),
    );
    await p.until(() => p.inbox.length >= 1);
    assert.equal(firstLine(p.inbox[0]!).slice(0, 12), 'SIP/2.0 400 ');
    assert.equal(p.closed, false);
    p.send('OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKnocl\r\n\r\n');
    await p.until(() => p.closed);
  } finally {
    p.close();
  }
});

test('TCP: connection limit and the silent-connection timeout', async () => {
  await untilZero();
  const peers = await Promise.all([1, 2, 3, 4, 5].map(() => StreamPeer.connect(tcpPort)));
  try {
    await eventually(() => peers.some((p) => p.closed), 'the connection over the limit is closed');
    assert.equal(stack.connections(), 4, 'maxConnections = 4');
    assert.equal(peers.filter((p) => p.closed).length, 1);
    // Nobody said anything: closed after silentTimeoutMs (400 ms; sweep every second).
    await untilZero(3000);
    assert.equal(stack.connections(), 0);
  } finally {
    for (const p of peers) p.close();
  }
});

test('TCP: the stack opens an outbound connection when none exists', async () => {
  const received: Buffer[] = [];
  const server = net.createServer((s) => {
    const peer = new StreamPeer(s);
    const iv = setInterval(() => {
      if (peer.inbox.length > 0) {
        clearInterval(iv);
        received.push(peer.inbox[0]!);
        s.write(serialize(createResponse(parseReq(peer.inbox[0]!), 202)));
      }
    }, 5);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const msg = parseReq(rawRequest({ method: 'MESSAGE', body: 'out', extra: ['Content-Type: text/plain'] }));
    const tx = stack.request(
      { ...msg, headers: msg.headers.filter((h) => h.name !== 'Via'), core: undefined },
      { transport: 'tcp', host: '127.0.0.1', port },
    );
    const final = await new Promise<SipResponse>((r) => tx.once('final', r));
    assert.equal(final.status, 202);
    assert.equal(parseReq(received[0]!).core!.via[0]!.port, tcpPort, 'Via carries our listening port');
  } finally {
    server.close();
  }
});

test('TCP: connecting to a closed port gives transport-error', async () => {
  const tmp = net.createServer();
  await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', () => r()));
  const port = (tmp.address() as net.AddressInfo).port;
  await new Promise<void>((r) => tmp.close(() => r()));
  const msg = parseReq(rawRequest({ method: 'OPTIONS' }));
  const tx = stack.request(
    { ...msg, headers: msg.headers.filter((h) => h.name !== 'Via'), core: undefined },
    { transport: 'tcp', host: '127.0.0.1', port },
  );
  const err = await new Promise<Error>((r) => tx.once('transport-error', r));
  assert.match(err.message, /ECONNREFUSED/);
});

test('TLS: request → 200 over the TLS connection', async () => {
  const s = tls.connect({ host: '127.0.0.1', port: tlsPort, ca: tlsCreds.cert });
  await new Promise<void>((r, j) => {
    s.once('secureConnect', () => r());
    s.once('error', j);
  });
  const p = new StreamPeer(s as unknown as net.Socket);
  try {
    p.send(rawRequest({ transport: 'TLS', branch: 'z9hG4bKtls1' }));
    await p.until(() => p.inbox.length >= 1);
    assert.equal(parseRes(p.inbox[0]!).status, 200);
    assert.equal(seen[seen.length - 1]!.src.transport, 'tls');
    p.send('\r\n\r\n');
    await p.until(
      () =>
        p.raw
          .map((b) => b.toString())
          .join('')
          .endsWith('\r\n\r\n\r\n') || p.raw.length >= 2,
    );
  } finally {
    p.close();
  }
});

test('TLS: outbound connection verifies the server certificate', async () => {
  const msg = parseReq(rawRequest({ method: 'OPTIONS' }));
  // Our own TLS listener answers 200 (the test CA is configured in tlsClient).
  const tx = stack.request(
    { ...msg, headers: msg.headers.filter((h) => h.name !== 'Via'), core: undefined },
    { transport: 'tls', host: '127.0.0.1', port: tlsPort },
  );
  const final = await new Promise<SipResponse>((r, j) => {
    tx.once('final', r);
    tx.once('transport-error', j);
  });
  assert.equal(final.status, 200);
});

test('TCP: idle and incomplete-message timeouts; onConnectionClosed reports the connId', async () => {
  const st = new SipStack({
    bindAddr: '127.0.0.1',
    udpPort: -1,
    tcpPort: 0,
    maxMessageSize: 4000,
    maxConnections: 10,
    idleTimeoutMs: 600,
    silentTimeoutMs: 600,
  });
  const closed: string[] = [];
  st.onConnectionClosed((id) => closed.push(id));
  let src: SipSource | undefined;
  st.onRequest((req, tx, s) => {
    src = s;
    tx.respond(createResponse(req, 200));
  });
  const [l] = await st.start();
  try {
    const a = await StreamPeer.connect(l!.port);
    const b = await StreamPeer.connect(l!.port);
    a.send(rawRequest({ transport: 'TCP', branch: 'z9hG4bKidle' }));
    await a.until(() => a.inbox.length >= 1);
    b.send('OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKpart\r\n'); // never finished
    await sleep(300);
    b.send('Max-Forwards: 70\r\n'); // trickling bytes does not extend the deadline
    await a.until(() => a.closed && b.closed, 4000);
    assert.equal(st.connections(), 0);
    assert.ok(closed.includes(src!.connId!));
    assert.equal(closed.length, 2);
  } finally {
    await st.stop();
  }
});
