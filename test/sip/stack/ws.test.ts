// SIP over WebSocket (RFC 7118) on 127.0.0.1: subprotocol, one message per frame, server-initiated requests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { createResponse, serialize } from '../../../src/sip/message/index.js';
import type { SipRequest, SipResponse } from '../../../src/sip/message/index.js';
import { SipStack } from '../../../src/sip/stack.js';
import type { SipSource } from '../../../src/sip/stack.js';
import { parseReq, parseRes, rawRequest, selfSigned, sleep } from './helpers.js';

let stack: SipStack;
let wsPort = 0;
const seen: Array<{ req: SipRequest; src: SipSource }> = [];

before(async () => {
  stack = new SipStack({
    bindAddr: '127.0.0.1',
    udpPort: -1,
    tcpPort: -1,
    wsPort: 0,
    maxMessageSize: 4000,
    maxConnections: 10,
  });
  stack.onRequest((req, tx, src) => {
    seen.push({ req, src });
    tx.respond(createResponse(req, 200));
  });
  const l = await stack.start();
  wsPort = l.find((x) => x.transport === 'ws')!.port;
});

after(async () => {
  await stack.stop();
});

function open(protocols: string[]): Promise<{ ws: WebSocket; inbox: Array<{ data: Buffer; binary: boolean }> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${wsPort}/`, protocols);
    const inbox: Array<{ data: Buffer; binary: boolean }> = [];
    ws.on('message', (d: Buffer, binary: boolean) => inbox.push({ data: d, binary }));
    ws.once('open', () => resolve({ ws, inbox }));
    ws.once('error', reject);
  });
}

async function until(pred: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) assert.fail('timed out');
    await sleep(10);
  }
}

test('WS: subprotocol "sip" negotiated, request → 200 as a text frame', async () => {
  const { ws, inbox } = await open(['sip']);
  try {
    assert.equal(ws.protocol, 'sip');
    // RFC 7118: no Content-Length needed over WebSocket.
    ws.send(
      rawRequest({ transport: 'WS', host: 'df7jal23ls0d.invalid', branch: 'z9hG4bKws1' }).replace(
        'Content-Length: 0\r\n',
        '',
      ),
    );
    await until(() => inbox.length >= 1);
    assert.equal(inbox[0]!.binary, false);
    const res = parseRes(inbox[0]!.data);
    assert.equal(res.status, 200);
    assert.equal(res.core!.via[0]!.received, '127.0.0.1');
    const src = seen[seen.length - 1]!.src;
    assert.equal(src.transport, 'ws');
    assert.ok(src.connId?.startsWith('ws:'));
    assert.equal(stack.connections(), 1);
  } finally {
    ws.close();
  }
});

test('WS: the stack sends requests to a WebSocket client through its connId', async () => {
  const { ws, inbox } = await open(['sip']);
  try {
    ws.send(rawRequest({ method: 'REGISTER', transport: 'WS', branch: 'z9hG4bKws2' }));
    await until(() => inbox.length >= 1);
    const src = seen[seen.length - 1]!.src;
    const msg = parseReq(rawRequest({ method: 'MESSAGE', body: 'ws hello', extra: ['Content-Type: text/plain'] }));
    const tx = stack.request(
      { ...msg, headers: msg.headers.filter((h) => h.name !== 'Via'), core: undefined },
      { transport: 'ws', host: 'df7jal23ls0d.invalid', port: 0, connId: src.connId },
    );
    const final = new Promise<SipResponse>((r) => tx.once('final', r));
    await until(() => inbox.length >= 2);
    const got = parseReq(inbox[1]!.data);
    assert.equal(got.method, 'MESSAGE');
    assert.equal(got.core!.via[0]!.transport, 'WS');
    ws.send(serialize(createResponse(got, 200)));
    assert.equal((await final).status, 200);
  } finally {
    ws.close();
  }
});

test('WS: a client without the "sip" subprotocol is refused; no connection → transport-error', async () => {
  await assert.rejects(open(['chat']), /Unexpected server response: 400/);
  await assert.rejects(open([]), /Unexpected server response: 400/);
  const msg = parseReq(rawRequest({ method: 'OPTIONS' }));
  const tx = stack.request(
    { ...msg, headers: msg.headers.filter((h) => h.name !== 'Via'), core: undefined },
    { transport: 'ws', host: '127.0.0.1', port: 1 },
  );
  const err = await new Promise<Error>((r) => tx.once('transport-error', r));
  assert.match(err.message, /no open WebSocket connection/);
});

test('WS: a plain HTTP request gets 426', async () => {
  const res = await fetch(`http://127.0.0.1:${wsPort}/`);
  assert.equal(res.status, 426);
  await res.text();
});

test('WSS: SIP over secure WebSocket', async () => {
  const creds = selfSigned();
  const st = new SipStack({
    bindAddr: '127.0.0.1',
    udpPort: -1,
    tcpPort: -1,
    wssPort: 0,
    tls: creds,
    maxMessageSize: 4000,
    maxConnections: 10,
  });
  st.onRequest((req, tx) => tx.respond(createResponse(req, 200)));
  const [l] = await st.start();
  assert.equal(l!.transport, 'wss');
  try {
    const ws = new WebSocket(`wss://127.0.0.1:${l!.port}/`, ['sip'], { ca: creds.cert });
    const inbox: Buffer[] = [];
    ws.on('message', (d: Buffer) => inbox.push(d));
    await new Promise<void>((r, j) => {
      ws.once('open', () => r());
      ws.once('error', j);
    });
    ws.send(rawRequest({ transport: 'WSS', branch: 'z9hG4bKwss1' }));
    await until(() => inbox.length >= 1);
    assert.equal(parseRes(inbox[0]!).status, 200);
    ws.close();
  } finally {
    await st.stop();
  }
});

test('TLS/WSS ports without a certificate are a configuration error', async () => {
  const st = new SipStack({
    bindAddr: '127.0.0.1',
    udpPort: -1,
    tcpPort: -1,
    wssPort: 0,
    maxMessageSize: 4000,
    maxConnections: 10,
  });
  await assert.rejects(st.start(), /no certificate\/key/);
});
