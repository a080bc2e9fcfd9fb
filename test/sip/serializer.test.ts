// serialize / createResponse.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import {
  parseMessage,
  serialize,
  createResponse,
  buildResponse,
  getHeader,
  getHeaders,
  parseNameAddr,
  reasonPhrase,
  SipSerializeError,
} from '../../src/sip/message/index.js';
import type { SipRequest } from '../../src/sip/message/index.js';
import { DATA_DIR, load, req, t4475 } from './helpers.js';

function allFiles(): string[] {
  const out: string[] = [];
  for (const d of ['rfc4475', 'rfc5118']) for (const f of readdirSync(path.join(DATA_DIR, d))) out.push(d + '/' + f);
  return out.sort();
}

describe('serialize', () => {
  it('round-trips every accepted torture message (parse → serialize → parse)', () => {
    let n = 0;
    for (const f of allFiles()) {
      const r = parseMessage(load(f));
      if (!r.ok) continue;
      n++;
      const out = serialize(r.msg);
      const r2 = parseMessage(out);
      assert.ok(r2.ok, f);
      assert.deepEqual(
        r2.msg.headers.filter((h) => !/^(l|content-length)$/i.test(h.name)),
        r.msg.headers.filter((h) => !/^(l|content-length)$/i.test(h.name)),
        f,
      );
      assert.equal(r2.msg.body.toString('latin1'), r.msg.body.toString('latin1'), f);
      assert.equal(r2.msg.core!.contentLength, r.msg.body.length, f);
      if (r.msg.type === 'request' && r2.msg.type === 'request') {
        assert.equal(r2.msg.method, r.msg.method);
        assert.equal(r2.msg.uri, r.msg.uri);
      }
      // serializing again gives identical bytes
      assert.deepEqual(serialize(r2.msg), out, f);
    }
    assert.equal(n, 42); // 32 of RFC 4475 + 10 of RFC 5118
  });

  it('writes folded headers on one line and keeps names as received', () => {
    const m = req(t4475('wsinv'));
    const s = serialize(m).toString('utf8');
    assert.ok(
      s.startsWith(
        'INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\nTO: sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n',
      ),
    );
    assert.ok(s.includes('\r\nNewFangledHeader: newfangled value continued newfangled value\r\n'));
    assert.ok(s.includes('\r\nContent-Length: 150\r\n'));
    assert.ok(s.includes('\r\ns: \r\n'));
  });

  it('rewrites Content-Length to the body length and adds it when absent', () => {
    const m = req(t4475('inv2543'));
    const s = serialize(m).toString();
    assert.ok(s.includes('\r\nContent-Length: 105\r\n\r\nv=0'));
    m.body = Buffer.from('x');
    const s2 = serialize(m).toString();
    assert.ok(s2.endsWith('Content-Length: 1\r\n\r\nx'));
  });

  it('refuses header injection', () => {
    const m = req(t4475('zeromf'));
    m.headers.push({ name: 'Subject', value: 'a\r\nVia: evil' });
    assert.throws(() => serialize(m), SipSerializeError);
    m.headers.pop();
    m.headers.push({ name: 'Bad Name', value: 'x' });
    assert.throws(() => serialize(m), SipSerializeError);
  });
});

describe('createResponse', () => {
  it('copies Via/From/To/Call-ID/CSeq and adds a To-tag', () => {
    const r = req(t4475('transports'));
    const resp = createResponse(r, 200, undefined, { toTag: 'abc123' });
    assert.equal(resp.status, 200);
    assert.equal(resp.reason, 'OK');
    assert.deepEqual(getHeaders(resp, 'Via'), getHeaders(r, 'Via'));
    assert.equal(getHeaders(resp, 'Via').length, 5);
    assert.equal(getHeader(resp, 'From'), getHeader(r, 'From'));
    assert.equal(getHeader(resp, 'To'), 'sip:user@example.com;tag=abc123');
    assert.equal(getHeader(resp, 'Call-ID'), 'transports.kijh4akdnaqjkwendsasfdj');
    assert.equal(getHeader(resp, 'CSeq'), '60 OPTIONS');
    assert.equal(getHeader(resp, 'Content-Length'), '0');
    const p = parseMessage(serialize(resp));
    assert.ok(p.ok && p.msg.type === 'response');
    assert.equal(p.msg.core!.to!.tag, 'abc123');
  });

  it('keeps an existing To-tag, no tag on 100, random tag otherwise', () => {
    const r = req(load('rfc5118/via-received-param-with-delim'));
    assert.equal(getHeader(createResponse(r, 200), 'To'), 'sip:user@example.com;tag=bd76ya');
    const r2 = req(t4475('zeromf'));
    assert.equal(getHeader(createResponse(r2, 100), 'To'), 'sip:user@example.com');
    const tag = parseNameAddr(getHeader(createResponse(r2, 486), 'To')!)!.tag!;
    assert.match(tag, /^[0-9a-f]{16}$/);
  });

  it('adds extra headers and a body', () => {
    const r = req(t4475('invut'));
    const buf = buildResponse(r, 415, undefined, { headers: [{ name: 'Accept', value: 'application/sdp' }] });
    const s = buf.toString();
    assert.ok(s.startsWith('SIP/2.0 415 Unsupported Media Type\r\n'));
    assert.ok(s.includes('\r\nAccept: application/sdp\r\n'));
    const ok = createResponse(r, 200, 'OK', { body: Buffer.from('v=0\r\n'), contentType: 'application/sdp' });
    assert.equal(getHeader(ok, 'Content-Type'), 'application/sdp');
    assert.equal(getHeader(ok, 'Content-Length'), '5');
    assert.equal(reasonPhrase(416), 'Unsupported URI Scheme');
    assert.equal(reasonPhrase(499), 'Error');
  });

  it('builds a 400 from the partial request of a rejected message', () => {
    const r = parseMessage(t4475('badinv01'));
    assert.ok(!r.ok);
    assert.ok(r.partial);
    const resp = createResponse(r.partial as SipRequest, r.status, r.reason, { toTag: 't' });
    const s = serialize(resp).toString();
    assert.ok(s.startsWith('SIP/2.0 400 Malformed Via header\r\nTo: sip:j.user@example.com;tag=t\r\n'));
    assert.ok(s.includes('\r\nVia: SIP/2.0/UDP 192.0.2.15;;,;,,\r\n'));
    assert.ok(s.includes('\r\nCSeq: 8 INVITE\r\n'));
  });

  it('copies Record-Route on 2xx to INVITE only', () => {
    const r = req(t4475('inv2543'));
    assert.equal(getHeaders(createResponse(r, 200), 'Record-Route').length, 1);
    assert.equal(getHeaders(createResponse(r, 486), 'Record-Route').length, 0);
  });
});

describe('error responses for bad start lines', () => {
  it('badvers: 505 can be answered with the request Via/From/To/Call-ID/CSeq', () => {
    const r = parseMessage(t4475('badvers'));
    assert.ok(!r.ok);
    assert.equal(r.status, 505);
    assert.ok(r.partial);
    assert.equal(r.partial.method, 'OPTIONS');
    const s = buildResponse(r.partial, 505, undefined, { toTag: 'x' }).toString();
    assert.ok(
      s.startsWith('SIP/2.0 505 Version Not Supported\r\nVia: SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw\r\n'),
    );
    assert.ok(s.includes('\r\nCall-ID: badvers.31417@c.example.com\r\n'));
    assert.ok(s.includes('\r\nTo: T. Watson <sip:t.watson@example.org>;tag=x\r\n'));
  });

  it('lwsstart / trws / ltgtruri carry the partial request', () => {
    for (const n of ['lwsstart', 'trws', 'ltgtruri', 'lwsruri']) {
      const r = parseMessage(t4475(n));
      assert.ok(!r.ok);
      assert.equal(r.status, 400);
      assert.ok(r.partial, n);
      assert.ok(getHeader(r.partial, 'Call-ID')!.startsWith(n + '.'), n);
    }
  });
});
