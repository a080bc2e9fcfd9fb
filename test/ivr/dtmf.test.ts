/** DTMF reception on packet bytes: RFC 4733 events (end bit, redundant end packets), SIP INFO bodies, collection. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DtmfReceiver,
  decodeTelephoneEvent,
  digitOfInfo,
  parseRtpHeader,
  telephoneEventPayloadType,
} from '../../src/sip/ivr/dtmf.js';
import { DigitCollector } from '../../src/sip/ivr/collect.js';

/** An RTP packet with a telephone-event payload, bytes written out by hand. */
function eventPacket(pt: number, seq: number, ts: number, event: number, end: boolean, duration: number, m = false) {
  return Buffer.from([
    0x80,
    (m ? 0x80 : 0) | pt,
    seq >> 8,
    seq & 0xff,
    (ts >>> 24) & 0xff,
    (ts >>> 16) & 0xff,
    (ts >>> 8) & 0xff,
    ts & 0xff,
    0x12,
    0x34,
    0x56,
    0x78,
    event,
    (end ? 0x80 : 0) | 10,
    duration >> 8,
    duration & 0xff,
  ]);
}

test('RFC 4733 payload: event, end bit, volume, duration; events above 15 are no digit', () => {
  assert.deepEqual(decodeTelephoneEvent(Buffer.from([11, 0x8a, 0x02, 0x80])), {
    digit: '#',
    end: true,
    volume: 10,
    duration: 640,
  });
  assert.deepEqual(decodeTelephoneEvent(Buffer.from([5, 0x0a, 0x00, 0xa0])), {
    digit: '5',
    end: false,
    volume: 10,
    duration: 160,
  });
  assert.equal(decodeTelephoneEvent(Buffer.from([10, 0, 0, 0]))!.digit, '*');
  assert.equal(decodeTelephoneEvent(Buffer.from([16, 0, 0, 0])), undefined); // a tone event, not DTMF
  assert.equal(decodeTelephoneEvent(Buffer.from([1, 0, 0])), undefined); // too short
});

test('RTP header: CSRCs and header extension skipped; not RTP v2 is refused', () => {
  const base = eventPacket(101, 7, 1000, 3, false, 160, true);
  const h = parseRtpHeader(base)!;
  assert.deepEqual(
    { pt: h.payloadType, m: h.marker, seq: h.seq, ts: h.timestamp, ssrc: h.ssrc, off: h.offset },
    { pt: 101, m: true, seq: 7, ts: 1000, ssrc: 0x12345678, off: 12 },
  );
  // one CSRC (CC=1) and a one-word extension (X=1)
  const ext = Buffer.concat([
    Buffer.from([0x91]),
    base.subarray(1, 12),
    Buffer.alloc(4, 9),
    Buffer.from([0xbe, 0xde, 0, 1, 1, 2, 3, 4]),
    base.subarray(12),
  ]);
  const h2 = parseRtpHeader(ext)!;
  assert.equal(h2.offset, 24);
  assert.equal(decodeTelephoneEvent(ext.subarray(h2.offset))!.digit, '3');
  assert.equal(parseRtpHeader(Buffer.from([0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), undefined);
  assert.equal(parseRtpHeader(Buffer.alloc(8)), undefined);
});

test('a key press is delivered once: the packets of one event and its three end packets share a timestamp', () => {
  const r = new DtmfReceiver(101);
  const got: string[] = [];
  r.onDigit = (d, via) => got.push(`${d}/${via}`);
  let seq = 100;
  const press = (event: number, ts: number) => {
    for (let i = 1; i <= 3; i++) assert.equal(r.rtp(eventPacket(101, seq++, ts, event, false, 160 * i, i === 1)), true);
    for (let i = 0; i < 3; i++) assert.equal(r.rtp(eventPacket(101, seq++, ts, event, true, 640)), true);
  };
  press(1, 8000);
  press(1, 9600); // the same key again: a new event (new timestamp)
  press(11, 11200);
  // a late duplicate of the first event's end packet: dropped
  assert.equal(r.rtp(eventPacket(101, seq++, 8000, 1, true, 640)), true);
  // audio (PCMU) and another payload type are not events
  const audio = Buffer.concat([eventPacket(0, seq++, 12000, 0, false, 0).subarray(0, 12), Buffer.alloc(160, 0xff)]);
  assert.equal(r.rtp(audio), false);
  assert.equal(r.rtp(eventPacket(96, seq++, 12800, 2, true, 640)), false);
  assert.deepEqual(got, ['1/rtp', '1/rtp', '#/rtp']);
});

test('SIP INFO: application/dtmf-relay Signal=, application/dtmf; other types and bad digits ignored', () => {
  assert.equal(digitOfInfo('application/dtmf-relay', 'Signal=5\r\nDuration=160\r\n'), '5');
  assert.equal(digitOfInfo('Application/DTMF-Relay; charset=x', 'signal= #\r\nDuration=250'), '#');
  assert.equal(digitOfInfo('application/dtmf-relay', 'Signal=11\r\n'), '#');
  assert.equal(digitOfInfo('application/dtmf', '7'), '7');
  assert.equal(digitOfInfo('application/dtmf', '*\r\n'), '*');
  assert.equal(digitOfInfo('application/dtmf-relay', 'Signal=55\r\n'), undefined);
  assert.equal(digitOfInfo('application/dtmf-relay', 'Duration=160'), undefined);
  assert.equal(digitOfInfo('text/plain', '5'), undefined);
  const r = new DtmfReceiver(undefined);
  const got: string[] = [];
  r.onDigit = (d, via) => got.push(`${d}/${via}`);
  assert.equal(r.info('application/dtmf-relay', Buffer.from('Signal=9\r\nDuration=160\r\n')), true);
  assert.equal(r.info('application/sdp', Buffer.from('v=0')), false);
  assert.equal(r.rtp(eventPacket(101, 1, 1, 1, true, 640)), false); // no payload type negotiated
  assert.deepEqual(got, ['9/info']);
});

test('the telephone-event payload type comes from the SDP (dynamic range only)', () => {
  const sdp = 'v=0\r\nm=audio 4000 RTP/AVP 0 96\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:96 telephone-event/8000\r\n';
  assert.equal(telephoneEventPayloadType(sdp), 96);
  assert.equal(telephoneEventPayloadType('v=0\r\nm=audio 4000 RTP/AVP 0\r\n'), undefined);
  assert.equal(telephoneEventPayloadType('a=rtpmap:13 telephone-event/8000\r\n'), undefined);
});

test('collection: # ends, typed-ahead digits count, inter-digit gap ends, no key is a timeout', async () => {
  const c = new DigitCollector();
  const o = { maxDigits: 32, firstDigitMs: 150, interDigitMs: 100 };
  c.push('1');
  c.push('2'); // typed during the prompt
  const p1 = c.collect(o);
  c.push('3');
  c.push('#');
  assert.deepEqual(await p1, { kind: 'digits', digits: '123' });
  const p2 = c.collect(o);
  c.push('4');
  assert.deepEqual(await p2, { kind: 'digits', digits: '4' }); // the gap ended it
  const t0 = Date.now();
  assert.deepEqual(await c.collect(o), { kind: 'timeout' });
  assert.ok(Date.now() - t0 >= 140);
  const p3 = c.collect({ ...o, maxDigits: 2 });
  c.push('5');
  c.push('6');
  assert.deepEqual(await p3, { kind: 'digits', digits: '56' });
  const p4 = c.collect(o);
  c.abort();
  assert.deepEqual(await p4, { kind: 'aborted' });
});
