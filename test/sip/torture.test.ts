// RFC 4475 torture tests: one test per .dat file, asserting concrete values.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  getHeader,
  getHeaders,
  getHeaderValues,
  getParam,
  unescapeUriComponent,
  aorKey,
  parseMessage,
} from '../../src/sip/message/index.js';
import type { SipUri, Uri } from '../../src/sip/message/index.js';
import { t4475, req, res, rejected } from './helpers.js';

function sip(u: Uri | undefined): SipUri {
  assert.ok(u);
  assert.equal(u.kind, 'sip');
  return u as SipUri;
}

describe('RFC 4475 §3.1.1 valid messages', () => {
  it('wsinv: folding, odd LWS, leading zeros, short/long forms, unknown headers', () => {
    const m = req(t4475('wsinv'));
    const c = m.core!;
    assert.equal(m.method, 'INVITE');
    assert.equal(m.uri, 'sip:vivekg@chair-dnrc.example.com;unknownparam');
    const ru = sip(m.ruri);
    assert.equal(ru.user, 'vivekg');
    assert.equal(ru.host, 'chair-dnrc.example.com');
    assert.deepEqual(ru.params, [{ name: 'unknownparam', value: null }]);
    assert.equal(c.to!.uri.raw, 'sip:vivekg@chair-dnrc.example.com');
    assert.equal(c.to!.tag, '1918181833n');
    assert.equal(c.to!.angle, false);
    assert.equal(c.from!.displayNameRaw, '"J Rosenberg \\\\\\""');
    assert.equal(c.from!.displayName, 'J Rosenberg \\"');
    assert.equal(c.from!.tag, '98asjd8');
    assert.equal(c.from!.uri.raw, 'sip:jdrosen@example.com');
    assert.equal(c.maxForwards, 68);
    assert.deepEqual(c.cseq, { seq: 9, method: 'INVITE' });
    assert.equal(c.callId, 'wsinv.ndaksdj@192.0.2.1');
    assert.equal(c.contentLength, 150);
    assert.equal(m.body.length, 150);
    assert.ok(m.body.toString().startsWith('v=0\r\n'));
    assert.equal(c.via.length, 3);
    assert.deepEqual(
      c.via.map((v) => [v.protocol, v.version, v.transport, v.host, v.port, v.branch]),
      [
        ['SIP', '2.0', 'UDP', '192.0.2.2', null, '390skdjuw'],
        ['SIP', '2.0', 'TCP', 'spindle.example.com', null, 'z9hG4bK9ikj8'],
        ['SIP', '2.0', 'UDP', '192.168.255.111', null, 'z9hG4bK30239'],
      ],
    );
    assert.equal(getHeader(m, 'Via'), 'SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw');
    assert.equal(getHeader(m, 'UnknownHeaderWithUnusualValue'), ';;,,;;,;');
    assert.equal(getHeader(m, 'NewFangledHeader'), 'newfangled value continued newfangled value');
    assert.equal(getHeader(m, 'Subject'), '');
    assert.equal(m.headers.find((h) => h.name === 's')!.value, '');
    assert.equal(c.contact.length, 1);
    assert.equal(c.contact[0]!.displayName, 'Quoted string ""');
    assert.deepEqual(c.contact[0]!.params, [
      { name: 'newparam', value: 'newvalue' },
      { name: 'secondparam', value: null },
      { name: 'q', value: '0.33' },
    ]);
    assert.equal(c.route.length, 1);
    assert.deepEqual(sip(c.route[0]!.uri).params, [
      { name: 'lr', value: null },
      { name: 'unknownwith', value: 'value' },
      { name: 'unknown-no-value', value: null },
    ]);
    // header order kept
    assert.deepEqual(
      m.headers.map((h) => h.name),
      [
        'TO',
        'from',
        'MaX-fOrWaRdS',
        'Call-ID',
        'Content-Length',
        'cseq',
        'Via',
        's',
        'NewFangledHeader',
        'UnknownHeaderWithUnusualValue',
        'Content-Type',
        'Route',
        'v',
        'm',
      ],
    );
  });

  it('intmeth: unusual method, escaped NUL in quoted string, UTF-8 param', () => {
    const m = req(t4475('intmeth'));
    const c = m.core!;
    const method = "!interesting-Method0123456789_*+`.%indeed'~";
    assert.equal(m.method, method);
    assert.deepEqual(c.cseq, { seq: 139122385, method });
    const ru = sip(m.ruri);
    assert.equal(ru.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
    assert.equal(ru.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
    assert.equal(ru.host, 'example.com');
    assert.equal(c.to!.displayName, 'BEL:\x07 NUL:\x00 DEL:\x7f');
    assert.equal(sip(c.to!.uri).user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
    assert.equal(c.from!.displayNameRaw, "token1~` token2'+_ token3*%!.-");
    assert.equal(getParam(c.from!.params, "fromParam''~+*_!.-%"), '"работающий"');
    assert.equal(c.from!.tag, "_token~1'+`*%!-.");
    assert.equal(c.callId, 'intmeth.word%ZK-!.*_+\'@word`~)(><:\\/"][?}{');
    assert.equal(c.maxForwards, 255);
    assert.equal(c.via[0]!.branch, "z9hG4bK-.!%66*_+`'~");
    assert.equal(c.via[0]!.transport, 'TCP');
    assert.equal(getHeader(m, "extensionHeader-!.%*+_`'~"), '\uFEFF大停電');
    assert.equal(m.body.length, 0);
  });

  it('esc01: escapes kept raw, equivalent when unescaped', () => {
    const m = req(t4475('esc01'));
    const c = m.core!;
    const ru = sip(m.ruri);
    assert.equal(ru.user, 'sips%3Auser%40example.com');
    assert.equal(unescapeUriComponent(ru.user!), 'sips:user@example.com');
    assert.equal(ru.host, 'example.net');
    assert.equal(sip(c.to!.uri).user, '%75se%72');
    assert.equal(unescapeUriComponent('%75se%72'), 'user');
    assert.equal(sip(c.from!.uri).user, 'I%20have%20spaces');
    assert.equal(c.from!.tag, '938');
    const ct = sip(c.contact[0]!.uri);
    assert.equal(ct.user, 'cal%6Cer');
    assert.deepEqual(ct.params, [
      { name: '%6C%72', value: null },
      { name: 'n%61me', value: 'v%61lue%25%34%31' },
    ]);
    assert.equal(c.callId, 'esc01.239409asdfakjkn23onasd0-3234');
    assert.equal(getHeader(m, 'Content-Type'), 'application/sdp');
    assert.equal(c.maxForwards, 87);
    assert.equal(m.body.length, 150);
  });

  it('escnull: %00 in user parts, two distinct contacts', () => {
    const m = req(t4475('escnull'));
    const c = m.core!;
    assert.equal(m.method, 'REGISTER');
    assert.equal(sip(c.to!.uri).user, 'null-%00-null');
    assert.equal(sip(c.from!.uri).user, 'null-%00-null');
    assert.equal(c.contact.length, 2);
    const u1 = sip(c.contact[0]!.uri);
    const u2 = sip(c.contact[1]!.uri);
    assert.equal(u1.user, '%00');
    assert.equal(u2.user, '%00%00');
    const k1 = aorKey(u1.user, u1.host);
    const k2 = aorKey(u2.user, u2.host);
    assert.notEqual(k1, k2);
    assert.equal(k1, '\x00@host5.example.com');
    assert.equal(aorKey(sip(c.to!.uri).user, 'example.com'), 'null-\x00-null@example.com');
    assert.equal(c.contentLength, 0);
    assert.equal(c.cseq!.seq, 14398234);
  });

  it('esc02: escaped method and header name are unknown tokens', () => {
    const m = req(t4475('esc02'));
    const c = m.core!;
    assert.equal(m.method, 'RE%47IST%45R');
    assert.notEqual(m.method, 'REGISTER');
    assert.equal(c.cseq!.method, 'RE%47IST%45R');
    assert.equal(c.contact.length, 2);
    assert.deepEqual(
      c.contact.map((x) => x.uri.raw),
      ['sip:alias1@host1.example.com', 'sip:alias3@host3.example.com'],
    );
    assert.equal(getHeaders(m, 'Contact').length, 2);
    assert.equal(getHeader(m, 'C%6Fntact'), '<sip:alias2@host2.example.com>');
    assert.equal(c.to!.displayName, '%Z%45');
    assert.equal(c.via[0]!.branch, 'z9hG4bK209%fzsnel234');
    assert.equal(c.via[0]!.transport, 'TCP');
  });

  it('lwsdisp: no LWS between display name and <', () => {
    const m = req(t4475('lwsdisp'));
    const f = m.core!.from!;
    assert.equal(f.displayName, 'caller');
    assert.equal(f.uri.raw, 'sip:caller@example.com');
    assert.equal(f.tag, '323');
    assert.equal(m.core!.cseq!.seq, 60);
  });

  it('longreq: long values and many Vias', () => {
    const m = req(t4475('longreq'));
    const c = m.core!;
    assert.equal(c.via.length, 34);
    assert.equal(c.via[0]!.host, 'sip33.example.com');
    assert.equal(c.via[32]!.host, 'sip1.example.com');
    const last = c.via[33]!;
    assert.equal(last.host, 'host.example.com');
    assert.equal(last.received, '192.0.2.5');
    assert.ok(last.branch!.startsWith('verylonglong'));
    assert.ok(c.to!.displayName!.startsWith('I have a user name of extremeextreme'));
    const tu = sip(c.to!.uri);
    assert.equal(tu.port, 6000);
    assert.equal(tu.params.length, 3);
    assert.equal(tu.params[1]!.value, 'shortvalue');
    assert.equal(tu.params[2]!.value, null);
    assert.ok(c.from!.tag!.startsWith('1298298298'));
    assert.ok(c.from!.tag!.endsWith('2982424'));
    assert.equal(c.from!.params.length, 3);
    assert.ok(c.callId!.endsWith('reallylongcallid'));
    assert.equal(c.cseq!.seq, 3882340);
    assert.equal(c.maxForwards, 70);
    assert.equal(m.body.length, 150);
    const unk = m.headers.find((h) => h.name.startsWith('Unknown-LongLong'))!;
    assert.equal(unk.name.length, 93);
    assert.ok(unk.value.startsWith('unknown-longlong'));
  });

  it('dblreq: the REGISTER is handled, trailing octets discarded', () => {
    const buf = t4475('dblreq');
    const m = req(buf);
    assert.equal(m.method, 'REGISTER');
    assert.equal(m.core!.callId, 'dblreq.0ha0isndaksdj99sdfafnl3lk233412');
    assert.equal(m.core!.contentLength, 0);
    assert.equal(m.body.length, 0);
    assert.equal(getHeader(m, 'Call-ID'), 'dblreq.0ha0isndaksdj99sdfafnl3lk233412');
    assert.ok(buf.length > 400);
  });

  it('semiuri: ; in the user part', () => {
    const m = req(t4475('semiuri'));
    const ru = sip(m.ruri);
    assert.equal(ru.user, 'user;par=u%40example.net');
    assert.equal(ru.host, 'example.com');
    assert.deepEqual(ru.params, []);
    assert.deepEqual(getHeaderValues(m, 'Accept'), [
      'application/sdp',
      'application/pkcs7-mime',
      'multipart/mixed',
      'multipart/signed',
      'message/sip',
      'message/sipfrag',
    ]);
  });

  it('transports: unknown transports in lower Vias', () => {
    const m = req(t4475('transports'));
    assert.deepEqual(
      m.core!.via.map((v) => [v.transport, v.host]),
      [
        ['UDP', 't1.example.com'],
        ['SCTP', 't2.example.com'],
        ['TLS', 't3.example.com'],
        ['UNKNOWN', 't4.example.com'],
        ['TCP', 't5.example.com'],
      ],
    );
    assert.equal(m.core!.callId, 'transports.kijh4akdnaqjkwendsasfdj');
  });

  it('mpart01: multipart body with binary part framed by Content-Length', () => {
    const m = req(t4475('mpart01'));
    assert.equal(m.method, 'MESSAGE');
    assert.equal(m.core!.contentLength, 553);
    assert.equal(m.body.length, 553);
    assert.ok(m.body.subarray(0, 18).toString() === '--7a9cbec02ceef655');
    assert.ok(m.body.toString('latin1').endsWith('--7a9cbec02ceef655--\r\n'));
    assert.ok(m.body.includes(0)); // binary part holds NUL octets
    assert.equal(getHeader(m, 'Content-Type'), 'multipart/mixed;boundary=7a9cbec02ceef655');
    assert.equal(m.core!.via[0]!.rport, true);
    assert.equal(m.core!.via[0]!.port, 5070);
    assert.equal(m.core!.route[0]!.uri.raw, 'sip:127.0.0.1:5080');
  });

  it('unreason: UTF-8 reason phrase', () => {
    const m = res(t4475('unreason'));
    assert.equal(m.status, 200);
    assert.equal(m.reason, '= 2**3 * 5**2 но сто девяносто девять - простое');
    assert.equal(m.body.length, 154);
    assert.equal(m.core!.cseq!.method, 'INVITE');
  });

  it('noreason: empty reason phrase', () => {
    const m = res(t4475('noreason'));
    assert.equal(m.status, 100);
    assert.equal(m.reason, '');
    assert.equal(m.core!.to!.tag, '902jndnke3');
  });
});

describe('RFC 4475 §3.1.2 invalid messages', () => {
  it('badinv01: stray ; and , in Via and Contact → 400', () => {
    const r = rejected(t4475('badinv01'));
    assert.equal(r.status, 400);
    assert.match(r.reason, /Via/);
    assert.equal(r.drop, undefined);
    // The Contact alone is bad too
    const fixed = Buffer.from(t4475('badinv01').toString('latin1').replace(';;,;,,', ';branch=z9hG4bKx'), 'latin1');
    const r2 = rejected(fixed);
    assert.equal(r2.status, 400);
    assert.match(r2.reason, /Contact/);
  });

  it('clerr: Content-Length larger than the datagram → 400', () => {
    const r = rejected(t4475('clerr'));
    assert.equal(r.status, 400);
    assert.match(r.reason, /Content-Length/);
  });

  it('ncl: negative Content-Length → 400', () => {
    const r = rejected(t4475('ncl'));
    assert.equal(r.status, 400);
    assert.match(r.reason, /Content-Length/);
  });

  it('scalar02: CSeq > 2^32-1 → 400', () => {
    const r = rejected(t4475('scalar02'));
    assert.equal(r.status, 400);
    assert.match(r.reason, /CSeq/);
  });

  it('scalarlg: response with out-of-range scalars is dropped', () => {
    const r = rejected(t4475('scalarlg'));
    assert.equal(r.drop, true);
  });

  it('quotbal: unterminated quote → 400', () => {
    const r = rejected(t4475('quotbal'));
    assert.equal(r.status, 400);
    assert.match(r.reason, /To/);
  });

  it('ltgtruri: <> around the Request-URI → 400', () => {
    const r = rejected(t4475('ltgtruri'));
    assert.equal(r.status, 400);
    assert.match(r.reason, /Request-URI/);
  });

  it('lwsruri: LWS inside the Request-URI → 400', () => {
    const r = rejected(t4475('lwsruri'));
    assert.equal(r.status, 400);
    assert.match(r.reason, /LWS in Request-URI/);
  });

  it('lwsstart: multiple SP in the Request-Line → 400 (strict)', () => {
    const r = rejected(t4475('lwsstart'));
    assert.equal(r.status, 400);
    assert.match(r.reason, /multiple SP/);
  });

  it('trws: trailing SP after SIP-Version → 400 (strict)', () => {
    const r = rejected(t4475('trws'));
    assert.equal(r.status, 400);
    assert.match(r.reason, /trailing whitespace/);
  });

  it('escruri: headers in the Request-URI → 400 (strict)', () => {
    const r = rejected(t4475('escruri'));
    assert.equal(r.status, 400);
    assert.match(r.reason, /Headers not allowed in Request-URI/);
    assert.equal(r.partial?.method, 'INVITE');
  });

  it('baddate: non-GMT Date is kept but ignored', () => {
    const m = req(t4475('baddate'));
    assert.equal(getHeader(m, 'Date'), 'Fri, 01 Jan 2010 16:00:00 EST');
    assert.equal(m.body.length, 150);
  });

  it('regbadct: escaped header in an addr-spec Contact → 400', () => {
    const r = rejected(t4475('regbadct'));
    assert.equal(r.status, 400);
    assert.match(r.reason, /Contact/);
  });

  it('badaspec: spaces inside <addr-spec> → 400', () => {
    const r = rejected(t4475('badaspec'));
    assert.equal(r.status, 400);
    assert.match(r.reason, /To/);
  });

  it('baddn: unquoted non-token display names → 400 (as published and with the blank line added)', () => {
    const raw = t4475('baddn');
    assert.ok(!raw.toString('latin1').endsWith('\r\n\r\n'));
    const r = rejected(raw);
    assert.equal(r.status, 400);
    assert.match(r.reason, /From/);
    const fixed = Buffer.concat([raw, Buffer.from('\r\n')]);
    const r2 = rejected(fixed);
    assert.equal(r2.status, 400);
    assert.match(r2.reason, /From/);
    // With valid display names the appended copy parses: the display names were the only problem.
    const ok = fixed
      .toString('latin1')
      .replace('Bell, Alexander', '"Bell, Alexander"')
      .replace('Watson, Thomas', '"Watson, Thomas"');
    assert.equal(parseMessage(Buffer.from(ok, 'latin1')).ok, true);
  });

  it('badvers: SIP/7.0 → 505', () => {
    const r = rejected(t4475('badvers'));
    assert.equal(r.status, 505);
  });

  it('mismatch01: parses (method mismatch is a validation error)', () => {
    const m = req(t4475('mismatch01'));
    assert.equal(m.method, 'OPTIONS');
    assert.deepEqual(m.core!.cseq, { seq: 8, method: 'INVITE' });
  });

  it('mismatch02: parses (unknown method + CSeq mismatch is a validation error)', () => {
    const m = req(t4475('mismatch02'));
    assert.equal(m.method, 'NEWMETHOD');
    assert.equal(m.core!.cseq!.method, 'INVITE');
    assert.equal(m.body.length, 138);
  });

  it('bigcode: status code 4294967301 is dropped', () => {
    const r = rejected(t4475('bigcode'));
    assert.equal(r.drop, true);
  });
});

describe('RFC 4475 §3.2-3.4', () => {
  it('badbranch: branch is exactly z9hG4bK, parser does not break', () => {
    const m = req(t4475('badbranch'));
    assert.equal(m.core!.via[0]!.branch, 'z9hG4bK');
    assert.equal(m.core!.via[0]!.host, '192.0.2.1');
  });

  it('insuf: parses without Call-ID/From/To', () => {
    const m = req(t4475('insuf'));
    assert.equal(m.core!.callId, null);
    assert.equal(m.core!.from, null);
    assert.equal(m.core!.to, null);
    assert.equal(m.core!.cseq!.seq, 193942);
    assert.equal(m.body.length, 152);
  });

  it('unkscm: unknown Request-URI scheme parses as an opaque URI', () => {
    const m = req(t4475('unkscm'));
    assert.deepEqual(m.ruri, {
      kind: 'other',
      scheme: 'nobodyknowsthisscheme',
      opaque: 'totallyopaquecontent',
      raw: 'nobodyKnowsThisScheme:totallyopaquecontent',
    });
  });

  it('novelsc: soap.beep scheme', () => {
    const m = req(t4475('novelsc'));
    assert.equal(m.ruri!.kind, 'other');
    assert.equal(m.ruri!.scheme, 'soap.beep');
    assert.equal(m.ruri!.raw, 'soap.beep://192.0.2.103:3002');
  });

  it('unksm2: non-SIP URIs in To/From/Contact', () => {
    const m = req(t4475('unksm2'));
    const c = m.core!;
    assert.equal(c.to!.uri.kind, 'other');
    assert.equal(c.to!.uri.scheme, 'isbn');
    assert.equal(c.to!.uri.raw, 'isbn:2983792873');
    assert.equal(c.from!.uri.raw, 'http://www.example.com');
    assert.equal(c.from!.tag, '3234233');
    assert.equal(c.contact[0]!.uri.scheme, 'name');
  });

  it('bext01: Require and Proxy-Require values', () => {
    const m = req(t4475('bext01'));
    assert.deepEqual(getHeaderValues(m, 'Require'), ['nothingSupportsThis', 'nothingSupportsThisEither']);
    assert.deepEqual(getHeaderValues(m, 'Proxy-Require'), ['noProxiesSupportThis', 'norDoAnyProxiesSupportThis']);
    assert.equal(m.core!.via[0]!.transport, 'TLS');
  });

  it('invut: unknown body type', () => {
    const m = req(t4475('invut'));
    assert.equal(getHeader(m, 'Content-Type'), 'application/unknownformat');
    assert.equal(m.body.toString(), '<audio>\r\n <pcmu port="443"/>\r\n</audio>\r\n');
  });

  it('regaut01: unknown Authorization scheme kept', () => {
    const m = req(t4475('regaut01'));
    assert.equal(getHeader(m, 'Authorization'), 'NoOneKnowsThisScheme opaque-data=here');
    assert.equal(m.core!.contentLength, 0);
  });

  it('multi01: several Call-ID/To/From/Max-Forwards/CSeq parse (first kept in core)', () => {
    const m = req(t4475('multi01'));
    assert.equal(getHeaders(m, 'Call-ID').length, 2);
    assert.equal(getHeaders(m, 'CSeq').length, 2);
    assert.equal(getHeaders(m, 'To').length, 2);
    assert.equal(getHeaders(m, 'From').length, 2);
    assert.equal(getHeaders(m, 'Max-Forwards').length, 2);
    assert.equal(m.core!.callId, 'multi01.98asdh@192.0.2.1');
    assert.equal(m.core!.cseq!.seq, 5);
    assert.equal(m.core!.maxForwards, 70);
    assert.equal(m.core!.contact.length, 2);
  });

  it('mcl01: conflicting Content-Lengths → 400', () => {
    const r = rejected(t4475('mcl01'));
    assert.equal(r.status, 400);
    assert.match(r.reason, /Multiple Content-Length/);
  });

  it('bcast: response with a broadcast second Via parses', () => {
    const m = res(t4475('bcast'));
    assert.equal(m.status, 200);
    assert.equal(m.core!.via.length, 2);
    assert.equal(m.core!.via[1]!.host, '255.255.255.255');
    assert.equal(m.body.length, 154);
  });

  it('zeromf: Max-Forwards 0', () => {
    const m = req(t4475('zeromf'));
    assert.equal(m.core!.maxForwards, 0);
    assert.equal(m.method, 'OPTIONS');
  });

  it('cparam01: unknownparam is a contact-param, not a URI param', () => {
    const m = req(t4475('cparam01'));
    const ct = m.core!.contact[0]!;
    assert.equal(ct.angle, false);
    assert.equal(ct.uri.raw, 'sip:+19725552222@gw1.example.net');
    assert.deepEqual(sip(ct.uri).params, []);
    assert.deepEqual(ct.params, [{ name: 'unknownparam', value: null }]);
  });

  it('cparam02: unknownparam is a URI param', () => {
    const m = req(t4475('cparam02'));
    const ct = m.core!.contact[0]!;
    assert.equal(ct.angle, true);
    assert.equal(ct.uri.raw, 'sip:+19725552222@gw1.example.net;unknownparam');
    assert.deepEqual(sip(ct.uri).params, [{ name: 'unknownparam', value: null }]);
    assert.deepEqual(ct.params, []);
  });

  it('regescrt: escaped Route stays inside the contact URI', () => {
    const m = req(t4475('regescrt'));
    const ct = m.core!.contact[0]!;
    assert.equal(ct.uri.raw, 'sip:user@example.com?Route=%3Csip:sip.example.com%3E');
    assert.deepEqual(sip(ct.uri).headers, [{ name: 'Route', value: '%3Csip:sip.example.com%3E' }]);
    assert.equal(m.core!.route.length, 0);
    assert.equal(getHeaders(m, 'Route').length, 0);
  });

  it('sdp01: Accept excludes SDP', () => {
    const m = req(t4475('sdp01'));
    assert.deepEqual(getHeaderValues(m, 'Accept'), ['text/nobodyKnowsThis']);
    assert.equal(m.body.length, 150);
  });

  it('inv2543: RFC 2543 INVITE (no branch, no Content-Length, no Max-Forwards)', () => {
    const m = req(t4475('inv2543'));
    const c = m.core!;
    assert.equal(c.via[0]!.branch, null);
    assert.equal(c.via[0]!.host, 'iftgw.example.com');
    assert.equal(c.contentLength, null);
    assert.equal(c.maxForwards, null);
    assert.ok(m.body.toString().startsWith('v=0\r\n'));
    assert.ok(m.body.toString().endsWith('m=audio 49217 RTP/AVP 0\r\n'));
    // addr-spec form: ;user=phone is a header param of To, not a URI param
    assert.equal(getParam(c.to!.params, 'user'), 'phone');
    assert.deepEqual(sip(c.to!.uri).params, []);
    assert.equal(getParam(sip(c.from!.uri).params, 'user'), 'phone');
    assert.equal(c.to!.tag, null);
    assert.equal(c.recordRoute[0]!.uri.raw, 'sip:UserB@example.com;maddr=ss1.example.com');
  });
});
