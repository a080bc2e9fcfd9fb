// Stream framing (TCP/TLS).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SipStreamFramer, frameMessage, serialize } from '../../src/sip/message/index.js';
import type { FramerEvent } from '../../src/sip/message/index.js';
import { t4475, t5118, req } from './helpers.js';

function messages(ev: FramerEvent[]): FramerEvent[] {
  return ev.filter((e) => e.type === 'message');
}

describe('frameMessage', () => {
  it('frames by Content-Length (long and compact forms)', () => {
    const a = t4475('zeromf');
    assert.deepEqual(frameMessage(a), { kind: 'message', end: a.length });
    const b = t4475('esc02'); // l: 0
    assert.deepEqual(frameMessage(b), { kind: 'message', end: b.length });
  });

  it('asks for more bytes on a partial header section or body', () => {
    const a = t4475('zeromf');
    assert.deepEqual(frameMessage(a.subarray(0, 50)), { kind: 'more' });
    const clerr = t4475('clerr'); // Content-Length 9999, body shorter: wait
    const r = frameMessage(clerr, 0, 65535);
    assert.equal(r.kind, 'more');
    assert.equal(r.kind === 'more' && r.total, clerr.indexOf('\r\n\r\n') + 4 + 9999);
  });

  it('framing errors: negative, duplicate, missing Content-Length, oversize', () => {
    assert.equal(frameMessage(t4475('ncl')).kind, 'error');
    const mcl = frameMessage(t4475('mcl01'));
    assert.ok(mcl.kind === 'error' && /Multiple/.test(mcl.reason));
    const miss = frameMessage(t4475('inv2543'));
    assert.ok(miss.kind === 'error' && /Missing/.test(miss.reason));
    assert.equal(frameMessage(t4475('inv2543'), 0, 65535, false).kind, 'message');
    const big = frameMessage(t4475('clerr'), 0, 1000);
    assert.ok(big.kind === 'error' && big.status === 513);
    const hdr = frameMessage(Buffer.alloc(2000, 0x41), 0, 1000);
    assert.ok(hdr.kind === 'error' && hdr.status === 513);
  });
});

describe('SipStreamFramer', () => {
  it('splits back-to-back messages and byte-by-byte input', () => {
    const one = t4475('zeromf');
    const two = serialize(req(t5118('ipv6-in-sdp')));
    const stream = Buffer.concat([one, two, one]);
    const f = new SipStreamFramer();
    const ev = f.push(stream);
    assert.equal(messages(ev).length, 3);
    const f2 = new SipStreamFramer();
    const got: FramerEvent[] = [];
    for (let i = 0; i < stream.length; i++) got.push(...f2.push(stream.subarray(i, i + 1)));
    const ms = messages(got);
    assert.equal(ms.length, 3);
    const second = ms[1]!;
    assert.ok(second.type === 'message' && second.result.ok);
    assert.equal(second.result.ok && second.result.msg.body.length, 251);
    assert.deepEqual(second.data, two);
    assert.equal(f2.buffered, 0);
  });

  it('dblreq on a stream: two messages', () => {
    const f = new SipStreamFramer();
    // dblreq's INVITE has Content-Length 150 and exactly 150 body octets after it
    const ev = f.push(t4475('dblreq'));
    const ms = messages(ev);
    assert.equal(ms.length, 2);
    const m1 = ms[0]!;
    const m2 = ms[1]!;
    assert.ok(m1.type === 'message' && m1.result.ok && m1.result.msg.type === 'request');
    assert.equal(m1.result.ok && m1.result.msg.type === 'request' && m1.result.msg.method, 'REGISTER');
    assert.ok(m2.type === 'message' && m2.result.ok);
    assert.equal(m2.result.ok && m2.result.msg.type === 'request' && m2.result.msg.method, 'INVITE');
    assert.ok(m2.result.ok && m2.result.msg.body.toString().includes('m =video'));
  });

  it('CRLF keep-alives', () => {
    const f = new SipStreamFramer();
    const ev = f.push(Buffer.from('\r\n\r\n'));
    assert.deepEqual(ev, [{ type: 'keepalive', ping: true }]);
    assert.deepEqual(f.push(Buffer.from('\r\n')), [{ type: 'keepalive', ping: false }]);
    const ev2 = f.push(Buffer.concat([Buffer.from('\r\n\r\n'), t4475('zeromf')]));
    assert.equal(ev2[0]!.type, 'keepalive');
    assert.equal(ev2[1]!.type, 'message');
  });

  it('a framing error kills the stream; a parse error does not', () => {
    const f = new SipStreamFramer();
    const ev = f.push(Buffer.concat([t4475('zeromf'), t4475('ncl')]));
    assert.equal(ev.length, 2);
    assert.equal(ev[0]!.type, 'message');
    assert.equal(ev[1]!.type, 'error');
    assert.ok(f.failed);
    assert.equal(f.push(t4475('zeromf'))[0]!.type, 'error');
    const g = new SipStreamFramer();
    const ev2 = g.push(Buffer.concat([t4475('badaspec'), t4475('zeromf')]));
    assert.equal(ev2.length, 2);
    const bad = ev2[0]!;
    assert.ok(bad.type === 'message' && !bad.result.ok && bad.result.status === 400);
    assert.ok(ev2[1]!.type === 'message');
    assert.ok(!g.failed);
  });

  it('clerr on a stream waits for the missing bytes', () => {
    const f = new SipStreamFramer();
    const ev = f.push(t4475('clerr'));
    assert.equal(ev.length, 0);
    assert.equal(f.buffered, t4475('clerr').length);
  });

  it('enforces the maximum message size', () => {
    const f = new SipStreamFramer({ maxMessageSize: 200 });
    const ev = f.push(t4475('zeromf'));
    assert.equal(ev[0]!.type, 'error');
    assert.ok(ev[0]!.type === 'error' && ev[0]!.status === 513);
  });
});

describe('SipStreamFramer efficiency', () => {
  it('a 60 kB message trickling in byte by byte is framed in linear time', () => {
    const body = Buffer.alloc(60000, 0x61);
    const msg = Buffer.concat([
      Buffer.from(
        'MESSAGE sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h.example.com;branch=z9hG4bK1\r\nFrom: <sip:b@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: big@h\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 60000\r\n\r\n',
      ),
      body,
    ]);
    const f = new SipStreamFramer();
    const t0 = process.hrtime.bigint();
    const got: FramerEvent[] = [];
    for (let i = 0; i < msg.length; i++) got.push(...f.push(msg.subarray(i, i + 1)));
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.equal(got.length, 1);
    const m = got[0]!;
    assert.ok(m.type === 'message' && m.result.ok);
    assert.equal(m.result.ok && m.result.msg.body.length, 60000);
    assert.deepEqual(m.data, msg);
    assert.equal(f.buffered, 0);
    assert.ok(ms < 2000, `took ${ms} ms`);
  });

  it('messages cut from the internal buffer are not overwritten by later data', () => {
    const a = t4475('zeromf');
    const f = new SipStreamFramer();
    f.push(a.subarray(0, 10));
    const ev = f.push(Buffer.concat([a.subarray(10), a.subarray(0, 50)]));
    assert.equal(ev.length, 1);
    const first = ev[0]!;
    assert.ok(first.type === 'message');
    const copy = Buffer.from(first.data);
    f.push(Buffer.alloc(100, 0x41));
    assert.deepEqual(first.data, copy);
    assert.deepEqual(first.data, a);
  });
});
