/**
 * The worker hand-off (src/sip/transport/handoff.ts): the Call-ID byte scan (long and compact form, case, whitespace,
 * folding, none), the owner of a Call-ID (marker, else a stable hash), connection ids, envelopes between two
 * hand-offs (deliver, send via, its error, a wrong token), and two stacks in one process: a UDP request owned by the
 * other worker is answered by it, a TCP request read by worker 1 and owned by worker 2 is answered on worker 1's
 * connection.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { createSocket } from 'node:dgram';
import {
  Handoff,
  ownerOf,
  ownerOfConnection,
  ownerOfString,
  scanCallId,
  type HandoffSink,
} from '../../../src/sip/transport/handoff.js';
import { createResponse, generateCallId, type ParseResult } from '../../../src/sip/message/index.js';
import { SipStack } from '../../../src/sip/stack.js';
import type { SipSource, SipTarget } from '../../../src/sip/transport/types.js';
import { eventually } from '../../helpers/wait.js';

const SECRET = Buffer.alloc(32, 7);

function msg(headers: string, body = ''): Buffer {
  return Buffer.from(`OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n${headers}\r\n\r\n${body}`, 'latin1');
}
function scanned(buf: Buffer): string | null {
  const at = scanCallId(buf);
  return at === null ? null : buf.toString('latin1', at[0], at[1]);
}

test('the Call-ID scan: long and compact form, any case, whitespace and folding; none → null', () => {
  assert.equal(scanned(msg('Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: abc@host\r\nCSeq: 1 OPTIONS')), 'abc@host');
  assert.equal(scanned(msg('i: compact-1\r\nCSeq: 1 OPTIONS')), 'compact-1');
  assert.equal(scanned(msg('I:compact-2')), 'compact-2');
  assert.equal(scanned(msg('CALL-ID: upper')), 'upper');
  assert.equal(scanned(msg('call-id   :   spaced  ')), 'spaced');
  assert.equal(scanned(msg('Call-Id:\t tabbed\t')), 'tabbed');
  assert.equal(scanned(msg('Call-ID:\r\n   folded@h\r\nCSeq: 1 OPTIONS')), 'folded@h');
  assert.equal(scanned(msg('Call-ID:\n\tlf-folded')), 'lf-folded');
  // names that only start like it, and a folded line of another header, are not the Call-ID
  assert.equal(
    scanned(msg('Call-Info: <http://x>\r\nIn-Reply-To: r1\r\nSubject: a\r\n i: not-a-header\r\ni: real')),
    'real',
  );
  // missing, or only in the body: handled where it arrived
  assert.equal(scanned(msg('CSeq: 1 OPTIONS\r\nContent-Length: 14', 'Call-ID: body!')), null);
  assert.equal(scanned(msg('Call-ID:   ')), null);
  assert.equal(scanned(Buffer.from('garbage without lines')), null);
  assert.equal(scanned(Buffer.from('SIP/2.0 200 OK\r\nCall-ID: resp-1\r\n\r\n')), 'resp-1');
});

test('the owner of a Call-ID: its worker marker when valid, else a stable hash spread over the workers', () => {
  const own = (id: string, n: number) => ownerOf(Buffer.from(id), 0, id.length, n);
  assert.equal(own('w2.abc', 3), 2);
  assert.equal(own('w1.3pcc-ff-a', 2), 1);
  assert.equal(own('w12.x', 12), 12);
  for (const id of ['w5.x', 'w0.x', 'w.x', 'w2', 'w2x.y', 'wide-open@h']) {
    const o = own(id, 2);
    assert.ok(o === 1 || o === 2, id);
    assert.equal(o, own(id, 2), 'stable');
    assert.equal(o, ownerOfString(id, 2));
  }
  const counts = [0, 0, 0];
  for (let i = 0; i < 2000; i++) counts[own(`${i}-1234@192.0.2.1`, 2)]!++;
  assert.ok(counts[1]! > 800 && counts[2]! > 800, counts.join());
  assert.equal(own('anything', 1), 1);
  assert.equal(ownerOfConnection('w2:tcp:17'), 2);
  assert.equal(ownerOfConnection('tcp:17'), 0);
  assert.equal(ownerOfConnection('ws:3'), 0);
});

interface Recorder extends HandoffSink {
  delivered: Array<{ result: ParseResult; src: SipSource }>;
  sent: Array<{ payload: string; target: SipTarget }>;
  warnings: string[];
  failWith?: string;
}
function recorder(): Recorder {
  const r: Recorder = {
    delivered: [],
    sent: [],
    warnings: [],
    deliver: (result, src) => r.delivered.push({ result, src }),
    sendLocal: (payload, target, onError) => {
      r.sent.push({ payload: payload.toString('latin1'), target });
      if (r.failWith) onError(new Error(r.failWith));
    },
    warn: (_o, m) => r.warnings.push(m),
  };
  return r;
}

test('envelopes between two workers: deliver with the source, send via and its error, wrong token ignored', async () => {
  const ports: Record<string, number> = {};
  const sinks = [recorder(), recorder()];
  const hs = [1, 2].map(
    (self) => new Handoff({ self, count: 2, secret: SECRET, announce: (p) => (ports[self] = p) }, sinks[self - 1]!),
  );
  const stranger = new Handoff(
    { self: 1, count: 2, secret: Buffer.alloc(32, 8), announce: () => undefined },
    recorder(),
  );
  try {
    for (const h of hs) await h.start();
    await stranger.start();
    assert.match(generateCallId(), /^w1\.[0-9a-f]{24}$/, 'the marker of the last hand-off made');
    for (const h of hs) h.setPeers(ports);
    stranger.setPeers(ports);
    const src: SipSource = { transport: 'udp', ip: '192.0.2.5', port: 5062, localIp: '127.0.0.1', localPort: 5060 };
    const theirs = msg('Call-ID: w2.0011');
    const mine = msg('Call-ID: w1.0011');
    assert.equal(hs[0]!.routeDatagram(mine, src), false, 'its own: processed here');
    assert.equal(hs[0]!.routeDatagram(theirs, src), true);
    await eventually(() => sinks[1]!.delivered.length === 1, 'delivered to worker 2');
    const d = sinks[1]!.delivered[0]!.result;
    assert.ok(d.ok && d.msg.core?.callId === 'w2.0011', 'parsed by the owner');
    assert.deepEqual(sinks[1]!.delivered[0]!.src, src, 'the original source');

    const tcpSrc: SipSource = { ...src, transport: 'tcp', connId: 'w1:tcp:4' };
    assert.equal(hs[0]!.routeParsed('w2.77', theirs, tcpSrc), true);
    await eventually(() => sinks[1]!.delivered.length === 2, 'stream message delivered');
    assert.deepEqual(sinks[1]!.delivered[1]!.src, tcpSrc);

    // worker 2 answers on worker 1's connection; then the connection is gone and the error comes back
    assert.equal(hs[1]!.heldElsewhere('w1:tcp:4'), 1);
    assert.equal(hs[1]!.heldElsewhere('w2:tcp:4'), 0);
    const target: SipTarget = { transport: 'tcp', host: '192.0.2.5', port: 5062, connId: 'w1:tcp:4' };
    const errors: string[] = [];
    hs[1]!.sendVia(1, Buffer.from('SIP/2.0 200 OK\r\n\r\n'), target, (e) => errors.push(e.message));
    await eventually(() => sinks[0]!.sent.length === 1, 'sent via worker 1');
    assert.deepEqual(sinks[0]!.sent[0]!.target, target);
    sinks[0]!.failWith = 'connection w1:tcp:4 is closed';
    hs[1]!.sendVia(1, Buffer.from('BYE'), target, (e) => errors.push(e.message));
    await eventually(() => errors.length === 1, 'the error back at worker 2');
    assert.deepEqual(errors, ['connection w1:tcp:4 is closed']);
    hs[1]!.sendVia(3, Buffer.from('BYE'), target, (e) => errors.push(e.message));
    await eventually(() => errors.length === 2, 'no such worker');
    assert.match(errors[1]!, /worker 3 .* not running/);
    assert.equal(hs[1]!.stats.sentVia, 2);

    // another secret: dropped, counted, warned about once
    for (let i = 0; i < 3; i++) assert.equal(stranger.routeDatagram(theirs, src), true);
    await eventually(() => hs[1]!.stats.rejected === 3, 'three rejected');
    assert.equal(sinks[1]!.delivered.length, 2);
    assert.equal(sinks[1]!.warnings.length, 1);
    assert.match(sinks[1]!.warnings[0]!, /wrong token/);
  } finally {
    for (const h of hs) h.stop();
    stranger.stop();
  }
  assert.match(generateCallId(), /^[0-9a-f]{24}$/, 'no marker after stop');
});

const OPTIONS = (callId: string, transport: string, port: number) =>
  `OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/${transport} 127.0.0.1:${port};branch=z9hG4bK-${callId};rport\r\n` +
  `Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: ${callId}\r\n` +
  'CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n';

test('two stacks as two workers: the owner answers a UDP request and a TCP one on the other worker s connection', async () => {
  const ports: Record<string, number> = {};
  const listeners: Array<(p: Record<string, number>) => void> = [];
  const seen: Array<{ worker: number; src: SipSource }> = [];
  const stacks = [1, 2].map(
    (self) =>
      new SipStack({
        bindAddr: '127.0.0.1',
        udpPort: 0,
        tcpPort: 0,
        maxMessageSize: 65535,
        maxConnections: 100,
        handoff: {
          self,
          count: 2,
          secret: SECRET,
          announce: (p) => {
            ports[self] = p;
            for (const l of listeners) l({ ...ports });
          },
          peers: (l) => listeners.push(l),
        },
      }),
  );
  stacks.forEach((s, i) =>
    s.onRequest((req, tx, src) => {
      seen.push({ worker: i + 1, src });
      tx.respond(createResponse(req, 200, `OK from ${i + 1}`));
    }),
  );
  const udp = createSocket('udp4');
  try {
    const ls = await Promise.all(stacks.map((s) => s.start()));
    const [udp1, tcp1] = [ls[0]!.find((l) => l.transport === 'udp')!, ls[0]!.find((l) => l.transport === 'tcp')!];
    // UDP: sent to worker 1, owned by worker 2
    const got: string[] = [];
    udp.on('message', (m) => got.push(m.toString()));
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
    udp.send(OPTIONS('w2.udp-1', 'UDP', udp.address().port), udp1.port, '127.0.0.1');
    await eventually(() => got.length === 1, 'UDP answer');
    assert.match(got[0]!, /^SIP\/2\.0 200 OK from 2/);
    assert.equal(seen[0]!.worker, 2);
    assert.equal(seen[0]!.src.port, udp.address().port);

    // TCP: the connection is worker 1's (id w1:…), the request worker 2's; the answer comes on that connection
    const sock = connect({ host: '127.0.0.1', port: tcp1.port });
    let text = '';
    sock.on('data', (d) => (text += d));
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(OPTIONS('w2.tcp-1', 'TCP', sock.localPort!));
    sock.write(OPTIONS('w1.tcp-2', 'TCP', sock.localPort!));
    await eventually(() => (text.match(/^SIP\/2\.0 200/gm)?.length ?? 0) === 2, 'two TCP answers');
    assert.match(text, /200 OK from 2/);
    assert.match(text, /200 OK from 1/);
    const viaTcp = seen.filter((s) => s.src.transport === 'tcp');
    assert.deepEqual(viaTcp.map((s) => s.worker).sort(), [1, 2]);
    for (const s of viaTcp) assert.match(s.src.connId!, /^w1:tcp:\d+$/);
    assert.equal(stacks[0]!.handoffStats()!.forwarded, 2);
    assert.equal(stacks[1]!.handoffStats()!.received, 2);
    assert.equal(stacks[1]!.handoffStats()!.sentVia, 1);
    assert.equal(stacks[1]!.ownsConnection(viaTcp[0]!.src.connId!), false);
    sock.destroy();
  } finally {
    udp.close();
    for (const s of stacks) await s.stop();
  }
});
