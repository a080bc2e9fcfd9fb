/** SDP reading and rewriting for the RTP relay: c= and m= ports only, everything else verbatim. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSdp, rewriteSdp, looksLikeSdp } from '../../src/sip/media/sdp.js';

const OFFER = [
  'v=0',
  'o=alice 2890844526 2890844526 IN IP4 192.168.1.20',
  's=-',
  'c=IN IP4 192.168.1.20',
  't=0 0',
  'm=audio 49170 RTP/AVP 0 8 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=sendrecv',
  'm=video 51372 RTP/AVP 99',
  'c=IN IP4 192.168.1.21',
  'a=rtpmap:99 H264/90000',
  'a=sendonly',
  'm=text 0 RTP/AVP 98',
  '',
].join('\r\n');

test('parseSdp: streams with their port, connection address (session or media level) and direction', () => {
  const s = parseSdp(Buffer.from(OFFER));
  assert.equal(s.length, 3);
  const rtcp = (port: number, address: string) => ({ rtcp: { port, address }, rtcpMux: false });
  assert.deepEqual(s[0], {
    index: 0,
    media: 'audio',
    port: 49170,
    address: '192.168.1.20',
    direction: 'sendrecv',
    ...rtcp(49171, '192.168.1.20'),
  });
  assert.deepEqual(s[1], {
    index: 1,
    media: 'video',
    port: 51372,
    address: '192.168.1.21',
    direction: 'sendonly',
    ...rtcp(51373, '192.168.1.21'),
  });
  assert.equal(s[2]!.port, 0);
  assert.equal(parseSdp(Buffer.from('hello')).length, 0);
});

test('rewriteSdp: every c= gets the relay address, each m= its relay port; other lines and CRLF kept verbatim', () => {
  const out = rewriteSdp(Buffer.from(OFFER), '203.0.113.5', [20000, 20004, 20008]).toString();
  const lines = out.split('\r\n');
  assert.equal(lines.length, OFFER.split('\r\n').length, 'same number of lines, CRLF kept');
  assert.equal(lines[1], 'o=alice 2890844526 2890844526 IN IP4 192.168.1.20', 'o= is not touched');
  assert.equal(lines[3], 'c=IN IP4 203.0.113.5');
  assert.equal(lines[5], 'm=audio 20000 RTP/AVP 0 8 101');
  assert.equal(lines[9], 'm=video 20004 RTP/AVP 99');
  assert.equal(lines[10], 'c=IN IP4 203.0.113.5');
  assert.equal(lines[13], 'm=text 0 RTP/AVP 98', 'a disabled stream stays disabled');
  for (const i of [0, 2, 4, 6, 7, 8, 11, 12]) assert.equal(lines[i], OFFER.split('\r\n')[i]);
  const again = parseSdp(Buffer.from(out));
  assert.deepEqual(
    again.map((x) => [x.address, x.port]),
    [
      ['203.0.113.5', 20000],
      ['203.0.113.5', 20004],
      ['203.0.113.5', 8 - 8],
    ],
  );
});

test('rewriteSdp: LF-only bodies, port counts (49170/2) kept, IPv6 relay address written as IN IP6', () => {
  const sdp = 'v=0\nc=IN IP4 10.0.0.1\nm=audio 49170/2 RTP/AVP 0\n';
  assert.equal(
    rewriteSdp(Buffer.from(sdp), '192.0.2.1', [30000]).toString(),
    'v=0\nc=IN IP4 192.0.2.1\nm=audio 30000/2 RTP/AVP 0\n',
  );
  assert.equal(
    rewriteSdp(Buffer.from(sdp), '2001:db8::1', [30000]).toString(),
    'v=0\nc=IN IP6 2001:db8::1\nm=audio 30000/2 RTP/AVP 0\n',
  );
});

test('rewriteSdp: a stream without a relay port keeps its port and its own c= line', () => {
  const sdp = 'v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\nm=video 5000 RTP/AVP 99\r\nc=IN IP4 10.0.0.2\r\n';
  const out = rewriteSdp(Buffer.from(sdp), '192.0.2.1', [20000]).toString();
  assert.equal(
    out,
    'v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 20000 RTP/AVP 0\r\nm=video 5000 RTP/AVP 99\r\nc=IN IP4 10.0.0.2\r\n',
  );
});

test('looksLikeSdp: by content type and v= start', () => {
  assert.equal(looksLikeSdp(Buffer.from('v=0\r\n'), 'application/sdp'), true);
  assert.equal(looksLikeSdp(Buffer.from('v=0\r\n'), undefined), true);
  assert.equal(looksLikeSdp(Buffer.from('v=0\r\n'), 'text/plain'), false);
  assert.equal(looksLikeSdp(Buffer.alloc(0), 'application/sdp'), false);
});

test('a=rtcp: (RFC 3605) and a=rtcp-mux are read; a=rtcp: follows the relay port + 1', () => {
  const body = Buffer.from(
    'v=0\r\no=x 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n' +
      'm=audio 4000 RTP/AVP 0\r\na=rtcp:4011 IN IP4 10.0.0.6\r\nm=video 5000 RTP/AVP 96\r\na=rtcp-mux\r\n' +
      'm=audio 6000 RTP/AVP 0\r\na=rtcp:6005\r\n',
  );
  const st = parseSdp(body);
  assert.deepEqual(
    st.map((x) => [x.index, x.rtcp, x.rtcpMux]),
    [
      [0, { port: 4011, address: '10.0.0.6' }, false],
      [1, { port: 5001, address: '10.0.0.5' }, true],
      [2, { port: 6005, address: '10.0.0.5' }, false],
    ],
  );
  const out = rewriteSdp(body, '192.0.2.1', [30000, 30002, 30004]).toString();
  assert.match(out, /a=rtcp:30001 IN IP4 192\.0\.2\.1\r\n/);
  assert.match(out, /a=rtcp:30005\r\n/);
  assert.match(out, /a=rtcp-mux\r\n/);
});
