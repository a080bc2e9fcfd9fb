/** The dialog table (src/sip/dialog/table.ts) and the outgoing-leg helpers (src/sip/dialog/uac.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMessage, type SipRequest } from '../../src/sip/message/index.js';
import { DialogTable } from '../../src/sip/dialog/table.js';
import { answerChallenge, newLeg, nextInvite } from '../../src/sip/dialog/uac.js';
import { parseDigestHeader } from '../../src/sip/services/digest.js';

function req(method: string, callId: string, fromTag: string, toTag?: string): SipRequest {
  const r = parseMessage(
    Buffer.from(
      `${method} sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nMax-Forwards: 70\r\n` +
        `From: <sip:a@h>;tag=${fromTag}\r\nTo: <sip:b@h>${toTag ? `;tag=${toTag}` : ''}\r\nCall-ID: ${callId}\r\n` +
        `CSeq: 2 ${method}\r\nContent-Length: 0\r\n\r\n`,
    ),
  );
  assert.ok(r.ok);
  return r.msg as SipRequest;
}

test('dialog table: a request is routed by Call-ID + our tag (To) + the peer tag (From); CANCEL by Call-ID + From', () => {
  const t = new DialogTable();
  const seen: string[] = [];
  t.add({ callId: 'c1', localTag: 'L', remoteTag: 'R' }, (r) => void seen.push(`one ${r.method}`));
  t.add({ callId: 'c2', localTag: 'L2', remoteTag: 'R2' }, (r) => void seen.push(`two ${r.method}`));
  const tx = undefined;
  const src = {} as never;
  t.lookup(req('BYE', 'c1', 'R', 'L'))?.(req('BYE', 'c1', 'R', 'L'), tx, src);
  t.lookup(req('INVITE', 'c2', 'R2', 'L2'))?.(req('INVITE', 'c2', 'R2', 'L2'), tx, src);
  t.lookup(req('CANCEL', 'c1', 'R'))?.(req('CANCEL', 'c1', 'R'), tx, src);
  assert.deepEqual(seen, ['one BYE', 'two INVITE', 'one CANCEL']);
  assert.equal(t.lookup(req('BYE', 'c1', 'R', 'other')), undefined, 'another local tag is another dialog');
  assert.equal(t.lookup(req('BYE', 'c1', 'X', 'L')), undefined, 'another remote tag is another dialog');
  assert.equal(t.lookup(req('BYE', 'c1', 'R')), undefined, 'a BYE without To tag names no dialog');
  t.remove({ callId: 'c1', localTag: 'L', remoteTag: 'R' });
  assert.equal(t.lookup(req('BYE', 'c1', 'R', 'L')), undefined);
  assert.equal(t.lookup(req('CANCEL', 'c1', 'R')), undefined);
  assert.equal(t.size, 1);
});

test('outgoing leg: the INVITE, the next CSeq, and a 401 answered with the gateway credentials', () => {
  const leg = newLeg({
    callId: 'k1',
    localTag: 'T',
    fromUri: 'sip:alice@example.com',
    fromDisplay: '"Alice"',
    toUri: 'sip:4930@gw.example.com',
    ruri: 'sip:4930@192.0.2.1:5060',
    target: { transport: 'udp', host: '192.0.2.1', port: 5060 },
    extra: [{ name: 'Contact', value: '<sip:192.0.2.9:5060>' }],
    body: Buffer.from('v=0\r\n'),
    contentType: 'application/sdp',
  });
  const h = (n: string) => leg.invite.headers.filter((x) => x.name === n).map((x) => x.value);
  assert.deepEqual(h('From'), ['"Alice" <sip:alice@example.com>;tag=T']);
  assert.deepEqual(h('CSeq'), ['1 INVITE']);
  assert.deepEqual(h('Content-Type'), ['application/sdp']);
  assert.equal(leg.invite.headers.at(-1)!.name, 'Content-Length');
  nextInvite(leg);
  assert.deepEqual(
    leg.invite.headers.filter((x) => x.name === 'CSeq').map((x) => x.value),
    ['2 INVITE'],
  );
  const res = parseMessage(
    Buffer.from(
      'SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK2\r\nFrom: <sip:alice@example.com>;tag=T\r\n' +
        'To: <sip:4930@gw.example.com>;tag=G\r\nCall-ID: k1\r\nCSeq: 2 INVITE\r\n' +
        'WWW-Authenticate: Digest realm="gw", nonce="abc", qop="auth", algorithm=MD5\r\nContent-Length: 0\r\n\r\n',
    ),
  );
  assert.ok(res.ok);
  assert.equal(answerChallenge(leg, res.msg as never, { username: 'u1', password: 'p1' }), true);
  const auth = leg.invite.headers.find((x) => x.name === 'Authorization')!.value;
  const d = parseDigestHeader(auth)!;
  assert.deepEqual(
    [d.params.get('username'), d.params.get('realm'), d.params.get('uri'), d.params.get('qop')],
    ['u1', 'gw', 'sip:4930@192.0.2.1:5060', 'auth'],
  );
  assert.equal(leg.cseq, 3);
  assert.equal(leg.invite.headers.at(-1)!.name, 'Content-Length');
});
