/**
 * The queue control's refusal before parsing (src/sip/transport/refuse.ts): the byte reader on its own, and on the
 * real server with the queue control forced "behind": a new REGISTER/INVITE gets 503 + Retry-After built from its
 * own headers without a server transaction; an INVITE with credentials or a To tag is never refused early.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { quickRefusal, isNewRequestCandidate } from '../../src/sip/transport/refuse.js';
import type { OverloadMonitor } from '../../src/overload/monitor.js';
import type { SipSource } from '../../src/sip/transport/types.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { udpAsk } from '../helpers/clients.js';

const SRC: SipSource = { transport: 'udp', ip: '192.0.2.7', port: 5070, localIp: '127.0.0.1', localPort: 5060 };
let seq = 0;
function request(method: string, extra = '', to = '<sip:bob@127.0.0.1>'): string {
  const n = ++seq;
  return (
    `${method} sip:bob@127.0.0.1 SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-early-${n}-${Date.now()};rport\r\n` +
    'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-second\r\n' +
    `Max-Forwards: 70\r\nf: <sip:alice@127.0.0.1>;tag=e${n}\r\nTo: ${to}\r\n` +
    `Call-ID: early-${n}@test\r\nCSeq: 7 ${method}\r\nContact: <sip:alice@127.0.0.1:5999>\r\n${extra}` +
    'Content-Length: 0\r\n\r\n'
  );
}
const header = (msg: string, name: string) =>
  msg.split('\r\n').filter((l) => l.toLowerCase().startsWith(name.toLowerCase() + ':'));

test('the byte reader answers a new INVITE/REGISTER 503 from its own headers, and declines the rest', () => {
  const req = request('INVITE');
  const out = quickRefusal(Buffer.from(req), SRC, 3)!.toString('latin1');
  assert.match(out, /^SIP\/2\.0 503 Service Unavailable\r\n/);
  const vias = header(out, 'Via');
  assert.equal(vias.length, 2);
  assert.match(vias[0]!, /;rport=5070;received=192\.0\.2\.7$/);
  assert.equal(vias[1], 'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-second');
  assert.match(header(out, 'From')[0]!, /^From: <sip:alice@127\.0\.0\.1>;tag=e\d+$/);
  assert.match(header(out, 'To')[0]!, /^To: <sip:bob@127\.0\.0\.1>;tag=\S+$/);
  assert.deepEqual(header(out, 'CSeq'), ['CSeq: 7 INVITE']);
  assert.deepEqual(header(out, 'Retry-After'), ['Retry-After: 3']);
  assert.ok(out.endsWith('Content-Length: 0\r\n\r\n'));
  assert.ok(quickRefusal(Buffer.from(request('REGISTER')), SRC, 2));

  const declined = [
    request('INVITE', 'Proxy-Authorization: Digest username="a"\r\n'),
    request('REGISTER', 'authorization: Digest username="a"\r\n'),
    request('INVITE', '', '<sip:bob@127.0.0.1>;tag=abc'), // in a dialog
    request('INVITE', 'Subject: one\r\n  folded\r\n'),
    request('INVITE').replace('CSeq: 7 INVITE', 'CSeq: 7 REGISTER'),
    request('INVITE').replace(/Call-ID: [^\r]*\r\n/, ''),
    request('OPTIONS'),
    request('INVITE').replace(' SIP/2.0\r\n', ' SIP/3.0\r\n'),
    'INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n', // no end of the head
  ];
  for (const d of declined) assert.equal(quickRefusal(Buffer.from(d), SRC, 2), null, d);
  assert.equal(isNewRequestCandidate(Buffer.from('INVITEX')), false);
  assert.equal(isNewRequestCandidate(Buffer.from('SIP/2.0 200 OK')), false);
});

let t: TestServer;
let sipPort = 0;
before(async () => {
  t = await startTestServer({ overloadqueue: '0' });
  sipPort = t.srv.services.listeners.find((l) => l.kind === 'sip udp')!.port;
});
after(() => t.stop());

const status = (answer: string) => Number(/^SIP\/2\.0 (\d{3})/.exec(answer)?.[1]);

test('queue behind: new requests refused before any transaction, continuations and dialogs pass', async () => {
  const gate = t.srv.services.overload as OverloadMonitor;
  const stack = t.srv.services.sip!.stack as unknown as {
    stats(): { serverTransactions: number; completedCache: number };
  };
  const txs = () => stack.stats().serverTransactions + stack.stats().completedCache;
  assert.equal(status(await udpAsk(sipPort, request('REGISTER'))), 401, 'admitted while the queue is short');
  const before = gate.stats().refused_queue;
  gate.queue.behind = true; // readings are off (overloadqueue 0): the state stays as set
  try {
    const txBefore = txs();
    const reg = await udpAsk(sipPort, request('REGISTER'));
    assert.equal(status(reg), 503);
    assert.deepEqual(header(reg, 'Retry-After'), ['Retry-After: 2']);
    assert.match(header(reg, 'Via')[0]!, /;rport=\d+;received=127\.0\.0\.1$/);
    assert.equal(status(await udpAsk(sipPort, request('INVITE'))), 503);
    assert.equal(txs(), txBefore, 'no transaction was made for the refusals');
    assert.equal(gate.stats().refused_queue, before + 2);
    // credentials: the answer to a challenge is never refused (a wrong one is judged as usual)
    const cont = await udpAsk(sipPort, request('REGISTER', 'Authorization: Digest username="nobody", realm="x"\r\n'));
    assert.notEqual(status(cont), 503);
    // a To tag: in a dialog (none here: 481 from the dialog layer, not 503)
    const inDialog = await udpAsk(sipPort, request('INVITE', '', '<sip:bob@127.0.0.1>;tag=nosuch'));
    assert.notEqual(status(inDialog), 503);
    // what the reader declines (a folded line) is still refused by the server's own check
    const txLate = txs();
    assert.equal(status(await udpAsk(sipPort, request('REGISTER', 'Subject: a\r\n b\r\n'))), 503);
    assert.ok(txs() > txLate, 'the normal path makes a transaction (the check can fail)');
    assert.equal(gate.stats().refused_queue, before + 3);
  } finally {
    gate.queue.behind = false;
  }
  assert.equal(status(await udpAsk(sipPort, request('REGISTER'))), 401, 'admitted again');
});
