// RFC 3261 §17.1 client transaction state machines, driven by fake timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createResponse, serialize } from '../../../src/sip/message/index.js';
import type { SipResponse } from '../../../src/sip/message/index.js';
import { TransactionLayer } from '../../../src/sip/transaction/layer.js';
import type { ClientTransaction } from '../../../src/sip/transaction/types.js';
import type { SipTarget } from '../../../src/sip/transport/types.js';
import { fakeEnv, firstLine, parseReq, parseRes, rawRequest } from './helpers.js';

const UDP: SipTarget = { transport: 'udp', host: '127.0.0.1', port: 5999 };
const TCP: SipTarget = { transport: 'tcp', host: '127.0.0.1', port: 5999 };
const LOCAL = { host: '127.0.0.1', port: 5060 };

/** A request as the TU builds it (no Via: the stack adds it). */
function tuRequest(method: string, cseq = 1) {
  const r = parseReq(rawRequest({ method, cseq }));
  return { ...r, headers: r.headers.filter((h) => h.name !== 'Via' && h.name !== 'Max-Forwards'), core: undefined };
}

function setup() {
  const f = fakeEnv();
  const layer = new TransactionLayer(f.env, {
    onRequest: () => undefined,
    onAck: () => undefined,
    warn: () => undefined,
  });
  return { ...f, layer };
}

function record(tx: ClientTransaction) {
  const ev: Array<[string, unknown]> = [];
  for (const name of ['provisional', 'final', 'timeout', 'transport-error'])
    tx.on(name, (x: unknown) => ev.push([name, x]));
  return ev;
}

/** Response (parsed, with core) to what the transaction sent as its n-th message. */
function answer(sent: Buffer, status: number, toTag = 'rt1'): SipResponse {
  return parseRes(serialize(createResponse(parseReq(sent), status, undefined, { toTag })));
}

const tick = () => new Promise<void>((r) => setImmediate(r));

test('client request gets our Via (branch, rport) and Max-Forwards; the caller object is untouched', async () => {
  const s = setup();
  const req = tuRequest('OPTIONS');
  const n = req.headers.length;
  s.layer.request(req, UDP, LOCAL);
  assert.equal(req.headers.length, n);
  await tick();
  const sent = parseReq(s.sent[0]!.buf);
  const via = sent.core!.via[0]!;
  assert.equal(via.transport, 'UDP');
  assert.equal(via.host, '127.0.0.1');
  assert.equal(via.port, 5060);
  assert.ok(via.branch!.startsWith('z9hG4bK') && via.branch!.length > 10);
  assert.equal(via.rport, true);
  assert.equal(sent.core!.maxForwards, 70);
});

test('non-INVITE over UDP: Timer E doubles to T2, Timer F fires timeout at 64*T1', async () => {
  const s = setup();
  const tx = s.layer.request(tuRequest('MESSAGE'), UDP, LOCAL);
  const ev = record(tx);
  await tick();
  assert.equal(s.sent.length, 1);
  s.timers.advance(500);
  assert.equal(s.sent.length, 2);
  s.timers.advance(1000);
  assert.equal(s.sent.length, 3);
  s.timers.advance(2000);
  assert.equal(s.sent.length, 4);
  s.timers.advance(4000);
  assert.equal(s.sent.length, 5);
  s.timers.advance(4000);
  assert.equal(s.sent.length, 6);
  s.timers.advance(32000 - 11500 - 1);
  assert.equal(ev.length, 0);
  assert.equal(s.sent.length, 11);
  s.timers.advance(1);
  assert.deepEqual(
    ev.map((e) => e[0]),
    ['timeout'],
  );
  assert.equal(s.layer.client.size, 0);
  assert.equal(s.timers.pending, 0);
});

test('non-INVITE: provisional → Proceeding (E at T2), final → Completed, retransmitted final absorbed, Timer K', async () => {
  const s = setup();
  const tx = s.layer.request(tuRequest('MESSAGE'), UDP, LOCAL);
  const ev = record(tx);
  await tick();
  s.layer.receiveResponse(answer(s.sent[0]!.buf, 100));
  assert.deepEqual(
    ev.map((e) => e[0]),
    ['provisional'],
  );
  s.timers.advance(500); // E was armed at T1 before the 100
  const before = s.sent.length;
  s.timers.advance(4000);
  assert.equal(s.sent.length, before + 1, 'Proceeding retransmits every T2');
  const ok = answer(s.sent[0]!.buf, 200);
  assert.equal(s.layer.receiveResponse(ok), true);
  assert.deepEqual(
    ev.map((e) => e[0]),
    ['provisional', 'final'],
  );
  assert.equal((ev[1]![1] as SipResponse).status, 200);
  s.layer.receiveResponse(ok);
  assert.equal(ev.length, 2, 'retransmitted final absorbed');
  const n = s.sent.length;
  s.timers.advance(4999);
  assert.equal(s.sent.length, n, 'no retransmission once Completed');
  assert.equal(s.layer.client.size, 1);
  s.timers.advance(1);
  assert.equal(s.layer.client.size, 0, 'Timer K = T4');
});

test('non-INVITE over TCP: no retransmissions, terminated on the final (K = 0)', async () => {
  const s = setup();
  const tx = s.layer.request(tuRequest('MESSAGE'), TCP, LOCAL);
  const ev = record(tx);
  await tick();
  s.timers.advance(10000);
  assert.equal(s.sent.length, 1);
  s.layer.receiveResponse(answer(s.sent[0]!.buf, 202));
  assert.deepEqual(
    ev.map((e) => e[0]),
    ['final'],
  );
  assert.equal(s.layer.client.size, 0);
  s.timers.advance(30000);
  assert.equal(ev.length, 1);
});

test('a response is matched by branch AND CSeq method', async () => {
  const s = setup();
  const tx = s.layer.request(tuRequest('MESSAGE'), UDP, LOCAL);
  const ev = record(tx);
  await tick();
  const wrong = answer(s.sent[0]!.buf, 200);
  const cseq = wrong.headers.find((h) => h.name === 'CSeq')!;
  cseq.value = '1 OPTIONS';
  assert.equal(s.layer.receiveResponse(parseRes(serialize(wrong))), false);
  assert.equal(ev.length, 0);
});

test('INVITE over UDP: Timer A doubles without cap, Timer B → timeout', async () => {
  const s = setup();
  const tx = s.layer.request(tuRequest('INVITE'), UDP, LOCAL);
  const ev = record(tx);
  await tick();
  s.timers.advance(31999);
  assert.equal(s.sent.length, 7); // 0, .5, 1.5, 3.5, 7.5, 15.5, 31.5 s
  s.timers.advance(1);
  assert.deepEqual(
    ev.map((e) => e[0]),
    ['timeout'],
  );
});

test('INVITE non-2xx: ACK built by the transaction (same branch, To-tag of the response), re-sent on retransmission', async () => {
  const s = setup();
  const tx = s.layer.request(tuRequest('INVITE', 5), UDP, LOCAL);
  const ev = record(tx);
  await tick();
  const invite = parseReq(s.sent[0]!.buf);
  s.layer.receiveResponse(answer(s.sent[0]!.buf, 180));
  const busy = answer(s.sent[0]!.buf, 486, 'busytag');
  s.layer.receiveResponse(busy);
  assert.deepEqual(
    ev.map((e) => e[0]),
    ['provisional', 'final'],
  );
  const ack = parseReq(s.sent[s.sent.length - 1]!.buf);
  assert.equal(ack.method, 'ACK');
  assert.equal(ack.uri, invite.uri);
  assert.equal(ack.core!.via[0]!.branch, invite.core!.via[0]!.branch);
  assert.equal(ack.core!.to!.tag, 'busytag');
  assert.deepEqual(ack.core!.cseq, { seq: 5, method: 'ACK' });
  const n = s.sent.length;
  s.layer.receiveResponse(busy);
  assert.equal(s.sent.length, n + 1);
  assert.equal(firstLine(s.sent[n]!.buf).startsWith('ACK '), true);
  assert.equal(ev.length, 2, 'the retransmitted final is not passed up');
  s.timers.advance(32000);
  assert.equal(s.layer.client.size, 0, 'Timer D');
});

test('INVITE 2xx: Accepted passes 2xx retransmissions to the TU until Timer M, no ACK by the transaction', async () => {
  const s = setup();
  const tx = s.layer.request(tuRequest('INVITE'), UDP, LOCAL);
  const ev = record(tx);
  await tick();
  const ok = answer(s.sent[0]!.buf, 200);
  s.layer.receiveResponse(ok);
  s.layer.receiveResponse(ok);
  assert.deepEqual(
    ev.map((e) => e[0]),
    ['final', 'final'],
  );
  assert.equal(s.sent.length, 1, 'ACK for 2xx is the TU’s job');
  s.timers.advance(5000);
  assert.equal(s.sent.length, 1, 'Timer A stopped');
  s.timers.advance(27000);
  assert.equal(s.layer.client.size, 0);
});

test('cancel(): deferred until a provisional, then CANCEL with the INVITE branch', async () => {
  const s = setup();
  const tx = s.layer.request(tuRequest('INVITE', 9), UDP, LOCAL);
  await tick();
  tx.cancel!();
  assert.equal(s.sent.length, 1, 'no CANCEL before a provisional (§9.1)');
  s.layer.receiveResponse(answer(s.sent[0]!.buf, 180));
  const c = parseReq(s.sent[1]!.buf);
  const inv = parseReq(s.sent[0]!.buf);
  assert.equal(c.method, 'CANCEL');
  assert.equal(c.core!.via[0]!.branch, inv.core!.via[0]!.branch);
  assert.deepEqual(c.core!.cseq, { seq: 9, method: 'CANCEL' });
  assert.equal(c.core!.callId, inv.core!.callId);
  // The CANCEL has its own transaction; its 200 is matched (branch + CANCEL).
  assert.equal(s.layer.receiveResponse(answer(s.sent[1]!.buf, 200)), true);
  tx.cancel!();
  assert.equal(s.sent.length, 2, 'only one CANCEL');
});

test('transport errors surface as transport-error and terminate', async () => {
  const f = fakeEnv({ failSend: true });
  const layer = new TransactionLayer(f.env, {
    onRequest: () => undefined,
    onAck: () => undefined,
    warn: () => undefined,
  });
  const tx = layer.request(tuRequest('MESSAGE'), UDP, LOCAL);
  const ev = record(tx);
  await tick();
  assert.equal(ev[0]![0], 'transport-error');
  assert.equal(layer.client.size, 0);
});
