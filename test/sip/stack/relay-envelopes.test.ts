/**
 * The node relay's envelopes, two NodeRelay instances on loopback: a captured envelope sent again is refused (the
 * replay check), a SEND the holder cannot write is answered FAILED so the sender's error callback runs at once, and a
 * SEND that is written is not answered.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { NodeRelay, type RelaySink } from '../../../src/sip/transport/relay.js';
import type { SipSource, SipTarget } from '../../../src/sip/transport/types.js';
import { freePort } from '../../helpers/ports.js';
import { eventually } from '../../helpers/wait.js';

const key = randomBytes(32);
const addrs = new Map<string, { host: string; port: number }>();
const relays: NodeRelay[] = [];
const sockets: Socket[] = [];

function sink(): RelaySink & { delivered: Buffer[]; sent: Buffer[]; failWith?: string; warned: string[] } {
  const s = {
    delivered: [] as Buffer[],
    sent: [] as Buffer[],
    failWith: undefined as string | undefined,
    warned: [] as string[],
    deliver: (p: Buffer, _src: SipSource) => void s.delivered.push(Buffer.from(p)),
    sendLocal: (p: Buffer, _t: SipTarget, onError: (e: Error) => void) => {
      if (s.failWith) onError(new Error(s.failWith));
      else s.sent.push(Buffer.from(p));
    },
    warn: (_o: object, m: string) => void s.warned.push(m),
  };
  return s;
}

async function relay(node: string, sk: RelaySink): Promise<NodeRelay> {
  const port = await freePort();
  addrs.set(node, { host: '127.0.0.1', port });
  const r = new NodeRelay(
    { node, key, bindAddr: '127.0.0.1', port, addressOf: (n) => addrs.get(n), nodeOfTag: () => undefined },
    sk,
  );
  await r.start();
  relays.push(r);
  return r;
}

after(() => {
  for (const r of relays) r.stop();
  for (const s of sockets) s.close();
});

test('a captured envelope sent again is refused; a fresh one of the same bytes is taken', async () => {
  const sb = sink();
  const a = await relay('a1', sink());
  const b = await relay('b1', sb);
  // a tap that stands where b's relay is announced, and keeps what a sends
  const tap = createSocket('udp4');
  sockets.push(tap);
  const captured: Buffer[] = [];
  tap.on('message', (m) => captured.push(m));
  await new Promise<void>((r) => tap.bind(0, '127.0.0.1', r));
  const real = addrs.get('b1')!;
  addrs.set('b1', { host: '127.0.0.1', port: tap.address().port });
  const payload = Buffer.from('SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n');
  a.sendVia('b1', payload, { transport: 'tcp', host: '192.0.2.9', port: 5060, connId: '@b1/w1:tcp:1' }, () => {});
  await eventually(() => captured.length === 1, 'captured');
  addrs.set('b1', real);
  const out = createSocket('udp4');
  sockets.push(out);
  out.send(captured[0]!, real.port, real.host);
  await eventually(() => sb.sent.length === 1, 'taken once');
  out.send(captured[0]!, real.port, real.host);
  await eventually(() => b.stats.replayed === 1, 'the replay counted');
  assert.equal(sb.sent.length, 1, 'the replay was not written again');
  a.sendVia('b1', payload, { transport: 'tcp', host: '192.0.2.9', port: 5060, connId: '@b1/w1:tcp:1' }, () => {});
  await eventually(() => sb.sent.length === 2, 'the same bytes in a new envelope are taken');
});

test('a SEND the holder cannot write comes back FAILED to the sender; a written one is not answered', async () => {
  const sh = sink();
  const sender = await relay('a2', sink());
  const holder = await relay('b2', sh);
  sh.failWith = 'connection w1:tcp:7 is closed';
  const errors: string[] = [];
  const target: SipTarget = { transport: 'tls', host: '192.0.2.9', port: 5061, connId: '@b2/w1:tcp:7' };
  sender.sendVia('b2', Buffer.from('INVITE sip:x SIP/2.0\r\n\r\n'), target, (e) => errors.push(e.message));
  await eventually(() => errors.length === 1, 'the sender learnt the failure');
  assert.equal(errors[0], 'connection w1:tcp:7 is closed');
  assert.equal(sender.stats.failed, 1);
  assert.ok(
    sh.warned.some((w) => /send on a connection failed/.test(w)),
    'the holder logged it',
  );
  sh.failWith = undefined;
  sender.sendVia('b2', Buffer.from('INVITE sip:y SIP/2.0\r\n\r\n'), target, (e) => errors.push(e.message));
  await eventually(() => sh.sent.length === 1, 'written');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(errors.length, 1, 'no error for a written send');
  assert.equal(holder.stats.rejected, 0);
});
