/** Pure parts of call control: the two-leg credit arithmetic, the rejecting SDP answer, in-dialog routing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maxBridgeSeconds, legCost } from '../../src/domain/calls/charging.js';
import { rejectingAnswer, hasMedia } from '../../src/sip/callcontrol/sdp.js';
import type { Rate } from '../../src/domain/rating/rate.js';

const rate = (price: number, connectfee = 0, minduration = 1, increment = 1): Rate => ({
  id: 1,
  planId: 1,
  prefix: '1',
  destination: 'x',
  price,
  connectfee,
  minduration,
  increment,
  currency: 'USD',
  validFrom: null,
  validTo: null,
});

test('legCost: 0 for an unrated leg or no time, by the rate otherwise', () => {
  assert.equal(legCost(10, undefined), 0);
  assert.equal(legCost(0, rate(600_000)), 0);
  assert.equal(legCost(10, rate(600_000)), 100_000); // 0.60/min → 0.01/s
  assert.equal(legCost(1, rate(600_000, 0, 60, 60)), 600_000); // 60/60 billing: a full minute
});

test('maxBridgeSeconds: both legs together stay within the credit, counting the head start of leg A', () => {
  const r = rate(600_000); // 10 000 micro per second
  assert.equal(maxBridgeSeconds(50_000, r, r, 0), 2); // 2x ≤ 5 s
  assert.equal(maxBridgeSeconds(50_000, r, r, 1), 2); // 1 + 2x ≤ 5
  assert.equal(maxBridgeSeconds(50_000, r, r, 3), 1);
  assert.equal(maxBridgeSeconds(50_000, r, r, 4), 0); // nothing left for B
  assert.equal(maxBridgeSeconds(50_000, undefined, r, 100), 5); // A on-net: B alone
  assert.equal(maxBridgeSeconds(0, undefined, undefined, 0, 7200), 7200); // both free: the cap
  // connect fees of both legs come first
  assert.equal(maxBridgeSeconds(100_000, rate(600_000, 30_000), rate(600_000, 30_000), 0), 2);
  // exactness: the answer fits and one second more does not
  const a = rate(123_457, 7_000, 30, 6);
  const b = rate(987_654, 0, 1, 1);
  const x = maxBridgeSeconds(5_000_000, a, b, 7);
  assert.ok(legCost(7 + x, a) + legCost(x, b) <= 5_000_000);
  assert.ok(legCost(7 + x + 1, a) + legCost(x + 1, b) > 5_000_000);
});

test('rejectingAnswer: one m= line per offered stream, each with port 0', () => {
  const offer =
    'v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\nm=video 40002 RTP/AVP 96\r\n';
  const ans = rejectingAnswer(Buffer.from(offer)).toString();
  assert.match(ans, /^v=0\r\n/);
  assert.deepEqual(
    ans.split('\r\n').filter((l) => l.startsWith('m=')),
    ['m=audio 0 RTP/AVP 0 8', 'm=video 0 RTP/AVP 96'],
  );
  assert.equal(hasMedia(Buffer.from(ans)), true);
  assert.equal(hasMedia(Buffer.alloc(0)), false);
  assert.equal(hasMedia(Buffer.from('hello')), false);
});

test('dialog table: BYE/re-INVITE of other dialogs still reach their owner; unknown call-control dialogs get 481', async () => {
  const { SipServer } = await import('../../src/sip/server.js');
  const { parseMessage } = await import('../../src/sip/message/index.js');
  const seen: string[] = [];
  const services = {
    config: { options: { sipnoncettl: 300 }, onChange: () => undefined },
    storage: { db: {} },
    bans: { isBanned: () => false },
    log: { warn: () => undefined, debug: () => undefined },
    logs: { get: () => ({ isLevelEnabled: () => false, info: () => undefined }) },
    version: 'test',
  } as any;
  const stack = { localAddress: () => undefined } as any;
  const sip = new SipServer(services, stack);
  // the B2BUA's new-call handler and one dialog of its own
  sip.setCallHandler((req) => void seen.push(`b2bua ${req.method} ${req.core!.callId}`));
  sip.dialogs.add(
    { callId: 'plain-call-1', localTag: '2', remoteTag: '1' },
    (req) => void seen.push(`b2bua ${req.method} ${req.core!.callId}`),
  );
  const msg = (method: string, callId: string, toTag = ';tag=2') => {
    const r = parseMessage(
      Buffer.from(
        `${method} sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nMax-Forwards: 70\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>${toTag}\r\nCall-ID: ${callId}\r\nCSeq: 2 ${method}\r\nContact: <sip:a@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n`,
      ),
    );
    assert.ok(r.ok);
    return r.msg as any;
  };
  const answers: number[] = [];
  const tx = { respond: (res: { status: number }) => answers.push(res.status) } as any;
  const src = { transport: 'udp', ip: '127.0.0.1', port: 5070, localIp: '127.0.0.1', localPort: 5060 } as any;
  await sip.handle(msg('BYE', 'plain-call-1'), tx, src);
  await sip.handle(msg('INVITE', 'plain-call-2', ''), tx, src);
  await sip.handle(msg('BYE', '3pcc-0000-a'), tx, src);
  assert.deepEqual(seen, ['b2bua BYE plain-call-1', 'b2bua INVITE plain-call-2']);
  assert.deepEqual(answers, [481]);
});
