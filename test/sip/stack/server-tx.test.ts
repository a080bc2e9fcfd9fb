// RFC 3261 §17.2 server transaction state machines, driven by fake timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createResponse } from '../../../src/sip/message/index.js';
import { TransactionLayer } from '../../../src/sip/transaction/layer.js';
import type { ServerTransaction } from '../../../src/sip/transaction/types.js';
import type { SipRequest } from '../../../src/sip/message/index.js';
import type { SipSource } from '../../../src/sip/transport/types.js';
import { UDP_SRC, fakeEnv, firstLine, parseReq, rawRequest } from './helpers.js';

const TCP_SRC: SipSource = {
  transport: 'tcp',
  ip: '127.0.0.1',
  port: 40000,
  connId: 'tcp:1',
  localIp: '127.0.0.1',
  localPort: 5060,
};

function setup(opts: { failSend?: boolean } = {}) {
  const f = fakeEnv(opts);
  const got: Array<{ req: SipRequest; tx: ServerTransaction }> = [];
  const acks: SipRequest[] = [];
  const layer = new TransactionLayer(f.env, {
    onRequest: (req, tx) => got.push({ req, tx }),
    onAck: (req) => acks.push(req),
    warn: () => undefined,
  });
  return { ...f, layer, got, acks };
}

test('non-INVITE over UDP: Trying absorbs retransmissions, Completed re-sends the final, Timer J ends it', () => {
  const s = setup();
  const text = rawRequest({ method: 'REGISTER', branch: 'z9hG4bKnist1' });
  s.layer.receiveRequest(parseReq(text), UDP_SRC);
  assert.equal(s.got.length, 1);
  const { req, tx } = s.got[0]!;
  assert.equal(tx.state, 'trying');
  s.layer.receiveRequest(parseReq(text), UDP_SRC); // retransmission while Trying: absorbed, not passed up
  assert.equal(s.got.length, 1);
  assert.equal(s.sent.length, 0);
  tx.respond(createResponse(req, 200));
  assert.equal(tx.state, 'completed');
  assert.equal(s.sent.length, 1);
  assert.equal(firstLine(s.sent[0]!.buf), 'SIP/2.0 200 OK');
  assert.deepEqual(s.sent[0]!.target, { transport: 'udp', host: '127.0.0.1', port: 5999 });
  s.layer.receiveRequest(parseReq(text), UDP_SRC);
  assert.equal(s.sent.length, 2, 'retransmitted request gets the final again');
  assert.ok(s.sent[1]!.buf.equals(s.sent[0]!.buf));
  tx.respond(createResponse(req, 500)); // too late: ignored
  assert.equal(s.sent.length, 2);
  // The transaction object is released at once; the layer keeps only the final until Timer J.
  assert.equal(s.layer.server.size, 0);
  assert.equal(s.layer.lingering.size, 1);
  s.timers.advance(64 * 500 - 1);
  s.layer.receiveRequest(parseReq(text), UDP_SRC);
  assert.equal(s.sent.length, 3, 'still answered just before Timer J');
  assert.equal(s.got.length, 1);
  s.timers.advance(1);
  assert.equal(s.layer.lingering.size, 0);
  assert.equal(s.timers.pending, 0);
  // After Timer J the same request is new again.
  s.layer.receiveRequest(parseReq(text), UDP_SRC);
  assert.equal(s.got.length, 2);
});

test('non-INVITE: a provisional is re-sent on retransmission while Proceeding', () => {
  const s = setup();
  const text = rawRequest({ method: 'MESSAGE', branch: 'z9hG4bKnist2' });
  s.layer.receiveRequest(parseReq(text), UDP_SRC);
  const { req, tx } = s.got[0]!;
  tx.respond(createResponse(req, 180));
  assert.equal(tx.state, 'proceeding');
  s.layer.receiveRequest(parseReq(text), UDP_SRC);
  assert.equal(s.sent.length, 2);
  assert.equal(firstLine(s.sent[1]!.buf), 'SIP/2.0 180 Ringing');
});

test('non-INVITE over TCP: Timer J is zero, no timer left behind', () => {
  const s = setup();
  s.layer.receiveRequest(
    parseReq(rawRequest({ method: 'REGISTER', transport: 'TCP', branch: 'z9hG4bKnist3' })),
    TCP_SRC,
  );
  const { req, tx } = s.got[0]!;
  tx.respond(createResponse(req, 200));
  assert.equal(tx.state, 'terminated');
  assert.equal(s.layer.server.size, 0);
  assert.equal(s.timers.pending, 0);
  assert.equal(s.sent[0]!.target.connId, 'tcp:1', 'responses go back on the same connection');
});

test('non-INVITE without an answer from the TU expires after 64*T1', () => {
  const s = setup();
  s.layer.receiveRequest(parseReq(rawRequest({ branch: 'z9hG4bKnist4' })), UDP_SRC);
  s.timers.advance(32000);
  assert.equal(s.got[0]!.tx.state, 'terminated');
  assert.equal(s.layer.server.size, 0);
});

test('responses use rport / sent-by port per RFC 3581 / §18.2.2', () => {
  const s = setup();
  s.layer.receiveRequest(parseReq(rawRequest({ branch: 'z9hG4bKnist5', rport: false, port: 5077 })), {
    ...UDP_SRC,
    port: 6000,
  });
  const { req, tx } = s.got[0]!;
  tx.respond(createResponse(req, 200));
  assert.equal(s.sent[0]!.target.port, 5077, 'no rport: the Via sent-by port');
  s.layer.receiveRequest(parseReq(rawRequest({ branch: 'z9hG4bKnist6', port: 5077 })), { ...UDP_SRC, port: 6000 });
  s.got[1]!.tx.respond(createResponse(s.got[1]!.req, 200));
  assert.equal(s.sent[1]!.target.port, 6000, 'rport: the source port');
});

test('INVITE: 100 Trying after 200 ms when the TU is silent', () => {
  const s = setup();
  const text = rawRequest({ method: 'INVITE', branch: 'z9hG4bKist1' });
  s.layer.receiveRequest(parseReq(text), UDP_SRC);
  s.timers.advance(199);
  assert.equal(s.sent.length, 0);
  s.timers.advance(1);
  assert.equal(s.sent.length, 1);
  assert.equal(firstLine(s.sent[0]!.buf), 'SIP/2.0 100 Trying');
  s.layer.receiveRequest(parseReq(text), UDP_SRC); // retransmission: 100 again
  assert.equal(s.sent.length, 2);
  assert.equal(firstLine(s.sent[1]!.buf), 'SIP/2.0 100 Trying');
});

test('INVITE: no automatic 100 when the TU answered first', () => {
  const s = setup();
  s.layer.receiveRequest(parseReq(rawRequest({ method: 'INVITE', branch: 'z9hG4bKist2' })), UDP_SRC);
  const { req, tx } = s.got[0]!;
  tx.respond(createResponse(req, 180));
  s.timers.advance(1000);
  assert.deepEqual(
    s.sent.map((x) => firstLine(x.buf)),
    ['SIP/2.0 180 Ringing'],
  );
});

test('INVITE non-2xx over UDP: Timer G retransmits (T1 doubling to T2), ACK → Confirmed, Timer I ends it', () => {
  const s = setup();
  const text = rawRequest({ method: 'INVITE', branch: 'z9hG4bKist3', cseq: 7 });
  s.layer.receiveRequest(parseReq(text), UDP_SRC);
  const { req, tx } = s.got[0]!;
  tx.respond(createResponse(req, 486));
  assert.equal(tx.state, 'completed');
  s.timers.advance(500);
  assert.equal(s.sent.length, 2);
  s.timers.advance(1000);
  assert.equal(s.sent.length, 3);
  s.timers.advance(2000);
  assert.equal(s.sent.length, 4);
  s.timers.advance(4000);
  assert.equal(s.sent.length, 5);
  s.timers.advance(4000); // capped at T2
  assert.equal(s.sent.length, 6);
  // ACK with the same branch (non-2xx ACK) is absorbed by the transaction.
  s.layer.receiveRequest(parseReq(rawRequest({ method: 'ACK', branch: 'z9hG4bKist3', cseq: 7 })), UDP_SRC);
  assert.equal(s.acks.length, 0);
  assert.equal(tx.state, 'confirmed');
  s.timers.advance(4000);
  assert.equal(s.sent.length, 6, 'no retransmission after the ACK');
  s.timers.advance(1000); // Timer I = T4
  assert.equal(tx.state, 'terminated');
  assert.equal(s.timers.pending, 0);
});

test('INVITE non-2xx without ACK: Timer H after 64*T1 (11 sends in all)', () => {
  const s = setup();
  s.layer.receiveRequest(parseReq(rawRequest({ method: 'INVITE', branch: 'z9hG4bKist4' })), UDP_SRC);
  const { req, tx } = s.got[0]!;
  tx.respond(createResponse(req, 603));
  s.timers.advance(31999);
  assert.equal(tx.state, 'completed');
  assert.equal(s.sent.length, 11); // 0, .5, 1.5, 3.5, 7.5, 11.5 ... 31.5 s
  s.timers.advance(1);
  assert.equal(tx.state, 'terminated');
  s.timers.advance(10000);
  assert.equal(s.sent.length, 11);
});

test('INVITE 2xx: Accepted state (RFC 6026) — 2xx re-sent on UDP until its ACK, ACK to the TU, Timer L', () => {
  const s = setup();
  const text = rawRequest({ method: 'INVITE', branch: 'z9hG4bKist5', callId: 'dlg5', fromTag: 'ft5', cseq: 3 });
  s.layer.receiveRequest(parseReq(text), UDP_SRC);
  const { req, tx } = s.got[0]!;
  const ok = createResponse(req, 200, undefined, { toTag: 'tt1' });
  tx.respond(ok);
  assert.equal(tx.state, 'accepted');
  s.layer.receiveRequest(parseReq(text), UDP_SRC); // INVITE retransmission: absorbed
  assert.equal(s.got.length, 1);
  assert.equal(s.sent.length, 1);
  tx.respond(ok); // the TU may re-send its 2xx too
  assert.equal(s.sent.length, 2);
  s.timers.advance(500);
  assert.equal(s.sent.length, 3, '2xx re-sent after T1 (§13.3.1.4)');
  s.timers.advance(1000);
  assert.equal(s.sent.length, 4, '... then 2*T1');
  assert.equal(firstLine(s.sent[3]!.buf), 'SIP/2.0 200 OK');
  // ACK for the 2xx: own branch, same Call-ID / CSeq number / From tag.
  s.layer.receiveRequest(
    parseReq(
      rawRequest({ method: 'ACK', branch: 'z9hG4bKack5', callId: 'dlg5', fromTag: 'ft5', cseq: 3, toTag: 'tt1' }),
    ),
    UDP_SRC,
  );
  assert.equal(s.acks.length, 1, 'ACK for a 2xx goes to the TU');
  s.timers.advance(10000);
  assert.equal(s.sent.length, 4, 'no more 2xx once ACKed');
  s.timers.advance(22000);
  assert.equal(tx.state, 'terminated');
  assert.equal(s.layer.acceptedByDialog.size, 0);
});

test('INVITE 2xx without ACK: re-sent up to Timer L', () => {
  const s = setup();
  s.layer.receiveRequest(parseReq(rawRequest({ method: 'INVITE', branch: 'z9hG4bKist5b' })), UDP_SRC);
  const { req, tx } = s.got[0]!;
  tx.respond(createResponse(req, 200));
  s.timers.advance(32000);
  assert.equal(tx.state, 'terminated');
  assert.equal(s.sent.length, 11);
});

test('INVITE non-2xx over TCP: no Timer G, ACK terminates at once (Timer I = 0)', () => {
  const s = setup();
  s.layer.receiveRequest(parseReq(rawRequest({ method: 'INVITE', transport: 'TCP', branch: 'z9hG4bKist6' })), TCP_SRC);
  const { req, tx } = s.got[0]!;
  tx.respond(createResponse(req, 486));
  s.timers.advance(5000);
  assert.equal(s.sent.length, 1);
  s.layer.receiveRequest(parseReq(rawRequest({ method: 'ACK', transport: 'TCP', branch: 'z9hG4bKist6' })), TCP_SRC);
  assert.equal(tx.state, 'terminated');
});

test('CANCEL is its own transaction and points at the INVITE it cancels', () => {
  const s = setup();
  s.layer.receiveRequest(parseReq(rawRequest({ method: 'INVITE', branch: 'z9hG4bKist7', callId: 'cx7' })), UDP_SRC);
  s.layer.receiveRequest(parseReq(rawRequest({ method: 'CANCEL', branch: 'z9hG4bKist7', callId: 'cx7' })), UDP_SRC);
  assert.equal(s.got.length, 2);
  assert.equal(s.got[1]!.req.method, 'CANCEL');
  assert.equal(s.got[1]!.tx.cancels, s.got[0]!.tx);
  assert.equal(s.got[0]!.tx.cancelled, true);
  // A CANCEL with another branch matches nothing.
  s.layer.receiveRequest(parseReq(rawRequest({ method: 'CANCEL', branch: 'z9hG4bKother', callId: 'cx7' })), UDP_SRC);
  assert.equal(s.got[2]!.tx.cancels, undefined);
});

test('matching uses sent-by too: same branch from another sent-by is a new transaction', () => {
  const s = setup();
  s.layer.receiveRequest(parseReq(rawRequest({ branch: 'z9hG4bKsame', host: '127.0.0.1', port: 5999 })), UDP_SRC);
  s.layer.receiveRequest(parseReq(rawRequest({ branch: 'z9hG4bKsame', host: '127.0.0.1', port: 5998 })), UDP_SRC);
  assert.equal(s.got.length, 2);
});

test('RFC 2543 requests (no magic cookie) are matched on Call-ID/CSeq/From tag/Via', () => {
  const s = setup();
  const text = rawRequest({ branch: 'oldstyle1', callId: 'c2543', fromTag: 'f1', cseq: 3 });
  s.layer.receiveRequest(parseReq(text), UDP_SRC);
  s.layer.receiveRequest(parseReq(text), UDP_SRC);
  assert.equal(s.got.length, 1);
  s.layer.receiveRequest(
    parseReq(rawRequest({ branch: 'oldstyle1', callId: 'c2543', fromTag: 'f1', cseq: 4 })),
    UDP_SRC,
  );
  assert.equal(s.got.length, 2);
});

test('a transport error terminates the server transaction', () => {
  const s = setup({ failSend: true });
  s.layer.receiveRequest(parseReq(rawRequest({ branch: 'z9hG4bKerr' })), UDP_SRC);
  const { req, tx } = s.got[0]!;
  tx.respond(createResponse(req, 200));
  assert.equal(tx.state, 'terminated');
  assert.equal(s.layer.server.size, 0);
});

test('a throwing TU handler gets a 500 sent for it', () => {
  const f = fakeEnv();
  const layer = new TransactionLayer(f.env, {
    onRequest: () => {
      throw new Error('boom');
    },
    onAck: () => undefined,
    warn: () => undefined,
  });
  layer.receiveRequest(parseReq(rawRequest({ branch: 'z9hG4bKboom' })), UDP_SRC);
  assert.equal(firstLine(f.sent[0]!.buf), 'SIP/2.0 500 Server Internal Error');
});

test('completed finals expire one by one (Timer J queue with one timer)', () => {
  const s = setup();
  const texts = [0, 1, 2].map((i) => rawRequest({ method: 'REGISTER', branch: 'z9hG4bKq' + i }));
  for (let i = 0; i < 3; i++) {
    s.layer.receiveRequest(parseReq(texts[i]!), UDP_SRC);
    s.got[i]!.tx.respond(createResponse(s.got[i]!.req, 200));
    s.timers.advance(10000);
  }
  assert.equal(s.layer.lingering.size, 3);
  assert.equal(s.timers.pending, 1, 'one timer for the whole queue');
  s.timers.advance(2000); // t = 32 s: the first one (completed at 0) is gone
  assert.equal(s.layer.lingering.size, 2);
  s.timers.advance(10000);
  assert.equal(s.layer.lingering.size, 1);
  s.timers.advance(10000);
  assert.equal(s.layer.lingering.size, 0);
  assert.equal(s.timers.pending, 0);
});

test('an INVITE the TU never answers gets a 500 after the safety delay, not a leak', () => {
  const s = setup();
  s.layer.receiveRequest(parseReq(rawRequest({ method: 'INVITE', branch: 'z9hG4bKforgot' })), UDP_SRC);
  const { tx } = s.got[0]!;
  s.timers.advance(599_999);
  assert.equal(tx.state, 'proceeding');
  s.timers.advance(1);
  assert.equal(tx.state, 'completed');
  assert.equal(firstLine(s.sent[s.sent.length - 1]!.buf), 'SIP/2.0 500 Server Internal Error');
  s.timers.advance(40_000);
  assert.equal(tx.state, 'terminated');
  assert.equal(s.layer.server.size, 0);
});
