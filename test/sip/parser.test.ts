// Parser unit tests beyond the torture files.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseMessage, getHeader } from '../../src/sip/message/index.js';
import type { SipRequest, SipResponse } from '../../src/sip/message/index.js';

const HDRS =
  'Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n' +
  'From: <sip:a@example.com>;tag=1\r\n' +
  'To: <sip:b@example.com>\r\n' +
  'Call-ID: c1@h\r\n' +
  'CSeq: 1 OPTIONS\r\n' +
  'Max-Forwards: 70\r\n';

function m(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}

function ok(s: string | Buffer): SipRequest | SipResponse {
  const r = parseMessage(typeof s === 'string' ? m(s) : s);
  if (!r.ok) assert.fail(r.reason);
  return r.msg;
}

function bad(s: string | Buffer): { status: number; reason: string; drop?: boolean } {
  const r = parseMessage(typeof s === 'string' ? m(s) : s);
  if (r.ok) assert.fail('expected rejection');
  return r;
}

describe('parseMessage basics', () => {
  it('minimal request, leading CRLFs ignored, body by Content-Length', () => {
    const msg = ok(
      '\r\n\r\nOPTIONS sip:b@example.com SIP/2.0\r\n' + HDRS + 'Content-Length: 5\r\n\r\nhelloEXTRA',
    ) as SipRequest;
    assert.equal(msg.method, 'OPTIONS');
    assert.equal(msg.version, 'SIP/2.0');
    assert.equal(msg.body.toString(), 'hello');
    assert.equal(msg.headers.length, 7);
  });

  it('accepts a lower-case SIP-Version literal and Uint8Array input', () => {
    const b = m('OPTIONS sip:b@example.com sip/2.0\r\n' + HDRS + 'l: 0\r\n\r\n');
    const msg = ok(b) as SipRequest;
    assert.equal(msg.version, 'sip/2.0');
    const r = parseMessage(new Uint8Array(b) as unknown as Buffer);
    assert.ok(r.ok);
  });

  it('other SIP versions → 505 (request) / drop (response)', () => {
    assert.equal(bad('OPTIONS sip:b@example.com SIP/2.1\r\n' + HDRS + '\r\n').status, 505);
    assert.equal(bad('SIP/3.0 200 OK\r\n' + HDRS + '\r\n').drop, true);
    assert.equal(bad('OPTIONS sip:b@example.com SIP/2\r\n' + HDRS + '\r\n').status, 400);
  });

  it('status line rules', () => {
    const r = ok('SIP/2.0 180 Ringing\r\n' + HDRS + '\r\n') as SipResponse;
    assert.equal(r.status, 180);
    assert.equal(r.reason, 'Ringing');
    assert.equal(bad('SIP/2.0 099 Low\r\n' + HDRS + '\r\n').drop, true);
    assert.equal(bad('SIP/2.0 700 High\r\n' + HDRS + '\r\n').drop, true);
    assert.equal(bad('SIP/2.0 200\r\n' + HDRS + '\r\n').drop, true);
    assert.equal(bad('SIP/2.0 20 OK\r\n' + HDRS + '\r\n').drop, true);
    assert.equal(bad('SIP/2.0 200 O\x01K\r\n' + HDRS + '\r\n').drop, true);
    assert.equal(bad('SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;;\r\n\r\n').drop, true);
  });

  it('folding and header-line syntax', () => {
    const msg = ok(
      'OPTIONS sip:b@example.com SIP/2.0\r\n' +
        HDRS +
        'Subject: a\r\n\tb\r\n  c  \r\nX-Empty:\r\nX-Tab\t:\tv\t\r\n\r\n',
    );
    assert.equal(getHeader(msg, 'Subject'), 'a b c');
    assert.equal(getHeader(msg, 'X-Empty'), '');
    assert.equal(getHeader(msg, 'X-Tab'), 'v');
    assert.match(bad('OPTIONS sip:b@example.com SIP/2.0\r\n folded\r\n' + HDRS + '\r\n').reason, /Continuation/);
    assert.match(bad('OPTIONS sip:b@example.com SIP/2.0\r\n' + HDRS + 'Bad Name: x\r\n\r\n').reason, /header line/);
    assert.match(bad('OPTIONS sip:b@example.com SIP/2.0\r\n' + HDRS + ': x\r\n\r\n').reason, /header name/);
    assert.match(bad('OPTIONS sip:b@example.com SIP/2.0\r\n' + HDRS + 'NoColon\r\n\r\n').reason, /header line/);
  });

  it('bare LF / bare CR / invalid UTF-8 in the header section → 400', () => {
    assert.match(bad('OPTIONS sip:b@example.com SIP/2.0\n' + HDRS + '\r\n').reason, /Bare LF/);
    assert.match(bad('OPTIONS sip:b@example.com SIP/2.0\r\n' + HDRS + 'X: a\rb\r\n\r\n').reason, /Bare CR/);
    const inv = Buffer.concat([
      m('OPTIONS sip:b@example.com SIP/2.0\r\n' + HDRS + 'X: '),
      Buffer.from([0xff, 0xfe]),
      m('\r\n\r\n'),
    ]);
    assert.match(bad(inv).reason, /UTF-8/);
    // the body may hold anything
    const body = Buffer.concat([
      m('OPTIONS sip:b@example.com SIP/2.0\r\n' + HDRS + 'Content-Length: 3\r\n\r\n'),
      Buffer.from([0xff, 0x0a, 0x00]),
    ]);
    assert.deepEqual([...ok(body).body], [0xff, 0x0a, 0x00]);
  });

  it('stream mode requires Content-Length', () => {
    const b = m('OPTIONS sip:b@example.com SIP/2.0\r\n' + HDRS + '\r\n');
    assert.ok(parseMessage(b).ok);
    const r = parseMessage(b, { stream: true });
    assert.ok(!r.ok && /Missing Content-Length/.test(r.reason));
  });

  it('unanswerable garbage is dropped; answerable requests carry partial', () => {
    assert.equal(bad('').drop, true);
    assert.equal(bad('\r\n\r\n').drop, true);
    assert.equal(bad('hello world\r\n\r\n').drop, true);
    const r = bad('OPTIONS sip:b@example.com SIP/2.0\r\nTo: <sip:b@example.com>\r\nCSeq: x\r\n\r\n');
    assert.equal(r.drop, true); // no Via to answer to
    const r2 = parseMessage(m('OPTIONS sip:b@example.com SIP/2.0\r\n' + HDRS + 'CSeq: x\r\n\r\n'));
    assert.ok(!r2.ok && r2.status === 400 && r2.drop === undefined && r2.partial?.headers.length === 7);
  });

  it('Contact: * and Content-Length as a list', () => {
    const msg = ok(
      'REGISTER sip:example.com SIP/2.0\r\n' +
        HDRS.replace('OPTIONS', 'REGISTER') +
        'Contact: *\r\nExpires: 0\r\nl: 0\r\n\r\n',
    );
    assert.equal(msg.core!.contactStar, true);
    assert.equal(msg.core!.contact.length, 0);
    assert.match(
      bad('OPTIONS sip:b@example.com SIP/2.0\r\n' + HDRS + 'Content-Length: 0, 0\r\n\r\n').reason,
      /Content-Length/,
    );
    assert.match(
      bad('OPTIONS sip:b@example.com SIP/2.0\r\n' + HDRS + 'Max-Forwards: 256\r\n\r\n').reason,
      /Max-Forwards/,
    );
    assert.match(bad('OPTIONS sip:b@example.com SIP/2.0\r\n' + HDRS + 'Call-ID: a b\r\n\r\n').reason, /Call-ID/);
    assert.match(
      bad('OPTIONS sip:b@example.com SIP/2.0\r\n' + HDRS + 'Route: sip:p.example.com\r\n\r\n').reason,
      /Route/,
    );
  });

  it('header values keep UTF-8 and NUL inside quoted strings', () => {
    const msg = ok('OPTIONS sip:b@example.com SIP/2.0\r\n' + HDRS.replace('From: <', 'From: "Zoë \\\x00" <') + '\r\n');
    assert.equal(msg.core!.from!.displayName, 'Zoë \x00');
  });
});

describe('no quadratic blow-ups', () => {
  it('a 64 kB Contact list of host-only URIs parses quickly', () => {
    const list = Array.from({ length: 6000 }, (_, i) => '<sip:h' + i + '.x>').join(',');
    const t0 = process.hrtime.bigint();
    const msg = ok(
      'REGISTER sip:example.com SIP/2.0\r\n' + HDRS.replace('OPTIONS', 'REGISTER') + 'Contact: ' + list + '\r\n\r\n',
    );
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.equal(msg.core!.contact.length, 6000);
    assert.ok(ms < 500, `took ${ms} ms`);
  });

  it('thousands of folded lines', () => {
    const folded = 'X-Long: a' + '\r\n b'.repeat(5000);
    const msg = ok('OPTIONS sip:b@example.com SIP/2.0\r\n' + HDRS + folded + '\r\n\r\n');
    assert.equal(getHeader(msg, 'X-Long')!.length, 1 + 5000 * 2);
  });
});
