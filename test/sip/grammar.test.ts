// Unit tests of the URI, name-addr, Via and header helpers.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseUri,
  formatUri,
  sipUriEquals,
  isIPv4,
  isIPv6,
  isHostname,
  parseNameAddr,
  parseNameAddrList,
  formatNameAddr,
  parseVia,
  formatVia,
  splitHeaderValue,
  parseCSeq,
  parseContentLength,
  parseMaxForwards,
  isValidCallId,
  parseTokenList,
  headerKey,
  canonicalName,
  COMPACT_FORMS,
  getHeader,
  setHeader,
  removeHeaders,
  parseMessage,
  mediaType,
} from '../../src/sip/message/index.js';
import type { SipUri } from '../../src/sip/message/index.js';

describe('URI parser', () => {
  it('parses a full sip URI', () => {
    const u = parseUri(
      'sips:alice:secret@atlanta.example.com:5061;transport=tcp;lr?subject=project%20x&priority=urgent',
    );
    assert.ok(u && u.kind === 'sip');
    assert.equal(u.scheme, 'sips');
    assert.equal(u.user, 'alice');
    assert.equal(u.password, 'secret');
    assert.equal(u.host, 'atlanta.example.com');
    assert.equal(u.hostType, 'name');
    assert.equal(u.port, 5061);
    assert.deepEqual(u.params, [
      { name: 'transport', value: 'tcp' },
      { name: 'lr', value: null },
    ]);
    assert.deepEqual(u.headers, [
      { name: 'subject', value: 'project%20x' },
      { name: 'priority', value: 'urgent' },
    ]);
    assert.equal(formatUri(u), u.raw);
  });

  it('parses hosts: IPv4, IPv6 reference, host only', () => {
    const a = parseUri('sip:192.0.2.1:5060') as SipUri;
    assert.equal(a.hostType, 'ipv4');
    assert.equal(a.port, 5060);
    assert.equal(a.user, null);
    const b = parseUri('SIP:[2001:db8::1]:5070;maddr=[2001:db8::2]') as SipUri;
    assert.equal(b.scheme, 'sip');
    assert.equal(b.host, '[2001:db8::1]');
    assert.equal(b.port, 5070);
    assert.equal(b.params[0]!.value, '[2001:db8::2]');
  });

  it('tel and unknown schemes', () => {
    const t = parseUri('tel:+1-201-555-0123;phone-context=example.com');
    assert.ok(t && t.kind === 'tel');
    assert.equal(t.number, '+1-201-555-0123');
    assert.deepEqual(t.params, [{ name: 'phone-context', value: 'example.com' }]);
    const o = parseUri('mailto:someone@example.com');
    assert.deepEqual(o, {
      kind: 'other',
      scheme: 'mailto',
      opaque: 'someone@example.com',
      raw: 'mailto:someone@example.com',
    });
  });

  it('rejects malformed URIs', () => {
    for (const s of [
      '',
      'sip:',
      'sip:@host',
      'sip:user@',
      'sip:user@host:',
      'sip:user@host:99999',
      'sip:host;',
      'sip:host;=x',
      'sip:host;a=',
      'sip:host?',
      'sip:host?a',
      'sip:us er@host',
      'sip:user@ho st',
      'sip:user@[2001:db8::1',
      'sip:user@[2001:db8:::1]',
      'sip:user@[192.0.2.1]',
      'sip:user@256.1.1.1',
      'sip:user@-host.com',
      'sip:%zz@host',
      'sip:user@host%41',
      '<sip:a@b>',
      '1sip:x',
      'tel:',
      'tel:12;',
      'foo:',
      'foo:a b',
      'sip:u@h.1c',
      'sip:u@h@i',
    ]) {
      assert.equal(parseUri(s), null, s);
    }
  });

  it('IPv4/IPv6/hostname validators', () => {
    assert.ok(isIPv4('0.0.0.0'));
    assert.ok(isIPv4('255.255.255.255'));
    assert.ok(!isIPv4('1.2.3'));
    assert.ok(!isIPv4('1.2.3.4.5'));
    assert.ok(!isIPv4('1.2.3.256'));
    for (const ok of [
      '::',
      '::1',
      '1::',
      '2001:db8::10',
      '2001:db8:0:0:0:0:0:1',
      '::ffff:192.0.2.1',
      'fe80::1:2:3:4:5:6',
      '1:2:3:4:5:6:7:8',
    ])
      assert.ok(isIPv6(ok), ok);
    for (const bad of [
      ':',
      ':1',
      '1:',
      '1:::2',
      '2001:db8:::1',
      '1:2:3:4:5:6:7:8:9',
      '1::2::3',
      '12345::',
      'g::1',
      '1:2:3:4:5:6:7::8:9',
    ])
      assert.ok(!isIPv6(bad), bad);
    assert.ok(isHostname('example.com'));
    assert.ok(isHostname('example.com.'));
    assert.ok(isHostname('a-b.example'));
    assert.ok(!isHostname('a_b.example'));
    assert.ok(!isHostname('example.-com'));
    assert.ok(!isHostname('example.1com'));
  });

  it('URI comparison with escapes', () => {
    const a = parseUri('sip:%61lice@Atlanta.COM;transport=TCP') as SipUri;
    const b = parseUri('sip:alice@atlanta.com;transport=tcp') as SipUri;
    assert.ok(sipUriEquals(a, b));
    const c = parseUri('sip:alice@atlanta.com:5060;transport=tcp') as SipUri;
    assert.ok(!sipUriEquals(b, c));
    const d = parseUri('sip:%00@h.com') as SipUri;
    const e = parseUri('sip:%00%00@h.com') as SipUri;
    assert.ok(!sipUriEquals(d, e));
  });
});

describe('name-addr parser', () => {
  it('quoted display name, params, tag', () => {
    const na = parseNameAddr('"Alice \\"A\\"" <sip:alice@example.com>;tag=abc;x="y z"');
    assert.ok(na);
    assert.equal(na.displayName, 'Alice "A"');
    assert.equal(na.displayNameRaw, '"Alice \\"A\\""');
    assert.equal(na.tag, 'abc');
    assert.deepEqual(na.params, [
      { name: 'tag', value: 'abc' },
      { name: 'x', value: '"y z"' },
    ]);
    assert.equal(formatNameAddr(na), '"Alice \\"A\\"" <sip:alice@example.com>;tag=abc;x="y z"');
  });

  it('token display names and addr-spec', () => {
    assert.equal(parseNameAddr('Bob Smith <sip:bob@b.com>')!.displayName, 'Bob Smith');
    const a = parseNameAddr('sip:bob@b.com;tag=1');
    assert.ok(a);
    assert.equal(a.displayName, null);
    assert.equal(a.angle, false);
    assert.equal(a.uri.raw, 'sip:bob@b.com');
    assert.equal(a.tag, '1');
    assert.equal(parseNameAddr('<sip:bob@b.com>')!.displayName, null);
  });

  it('rejects malformed values', () => {
    for (const s of [
      '',
      '"open <sip:a@b.com>',
      '< sip:a@b.com>',
      '<sip:a@b.com >',
      '<sip:a@b.com',
      'Bell, A <sip:a@b.com>',
      'sip:a@b.com?x=y',
      '<sip:a@b.com>;',
      '<sip:a@b.com>;;',
      '<sip:a@b.com>;tag=',
      '<sip:a@b.com> junk',
      '<sip:a@b.com>;tag="q"',
      'a@b.com',
    ]) {
      assert.equal(parseNameAddr(s), null, s);
    }
  });

  it('lists split on commas outside quotes and brackets', () => {
    const l = parseNameAddrList('"A, B" <sip:a@x.com;p=1>;q=0.5, <sip:b@y.com>, sip:c@z.com;expires=30');
    assert.ok(l);
    assert.equal(l.length, 3);
    assert.equal(l[0]!.displayName, 'A, B');
    assert.equal(l[2]!.uri.raw, 'sip:c@z.com');
    assert.equal(l[2]!.params[0]!.value, '30');
    assert.equal(parseNameAddrList('<sip:a@x.com>,'), null);
    assert.equal(parseNameAddrList('<sip:a@x.com>,,<sip:b@x.com>'), null);
    assert.equal(parseNameAddrList('sip:a@x.com', { requireAngle: true }), null);
  });
});

describe('Via parser', () => {
  it('parses params and rport forms', () => {
    const v = parseVia(
      'SIP/2.0/udp pc33.atlanta.com:5066;branch=z9hG4bK776;rport;received=192.0.2.1, SIP/2.0/TCP [::1];rport=5070;ttl=16;maddr=224.2.0.1',
    );
    assert.ok(v);
    assert.equal(v.length, 2);
    assert.equal(v[0]!.transport, 'UDP');
    assert.equal(v[0]!.port, 5066);
    assert.equal(v[0]!.rport, true);
    assert.equal(v[0]!.received, '192.0.2.1');
    assert.equal(v[1]!.rport, 5070);
    assert.equal(v[1]!.host, '[::1]');
    assert.equal(formatVia(v[0]!), 'SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776;rport;received=192.0.2.1');
  });

  it('rejects malformed Vias', () => {
    for (const s of [
      '',
      'SIP/2.0/UDP',
      'SIP/2.0 host',
      'SIP/2.0/UDPhost',
      'SIP/2.0/UDP host;;',
      'SIP/2.0/UDP host,',
      'SIP/2.0/UDP host;branch',
      'SIP/2.0/UDP host;received=foo',
      'SIP/2.0/UDP host;rport=x',
      'SIP/2.0/UDP host;ttl=256',
      'SIP/2.0/UDP host:70000',
      'SIP/2.0/UDP host junk',
      'SIP/2.0/UDP [::1',
    ]) {
      assert.equal(parseVia(s), null, s);
    }
  });
});

describe('header helpers', () => {
  it('splitHeaderValue respects quotes and <>', () => {
    assert.deepEqual(splitHeaderValue('a, "b,c" <sip:x@y,z>;p=1 ,d'), ['a', '"b,c" <sip:x@y,z>;p=1', 'd']);
    assert.deepEqual(splitHeaderValue('a,,b'), ['a', '', 'b']);
    assert.deepEqual(splitHeaderValue('"a\\",b", c'), ['"a\\",b"', 'c']);
  });

  it('scalar headers', () => {
    assert.deepEqual(parseCSeq('0009 INVITE'), { seq: 9, method: 'INVITE' });
    assert.deepEqual(parseCSeq('4294967295 ACK'), { seq: 4294967295, method: 'ACK' });
    assert.equal(parseCSeq('4294967296 ACK'), null);
    assert.equal(parseCSeq('1INVITE'), null);
    assert.equal(parseCSeq('1 INVITE x'), null);
    assert.equal(parseCSeq('-1 INVITE'), null);
    assert.equal(parseContentLength('0'), 0);
    assert.equal(parseContentLength('-999'), -1);
    assert.equal(parseContentLength('1 2'), -1);
    assert.equal(parseContentLength(''), -1);
    assert.equal(parseMaxForwards('0068'), 68);
    assert.equal(parseMaxForwards('256'), -1);
    assert.ok(isValidCallId('abc@def'));
    assert.ok(!isValidCallId('abc@'));
    assert.ok(!isValidCallId('a b'));
    assert.ok(!isValidCallId('a@b@c'));
    assert.deepEqual(parseTokenList(' 100rel ,timer'), ['100rel', 'timer']);
    assert.equal(parseTokenList('a,,b'), null);
    assert.equal(mediaType('Application/SDP ; charset=x'), 'application/sdp');
  });

  it('compact forms and canonical names', () => {
    const expect: Record<string, string> = {
      i: 'Call-ID',
      m: 'Contact',
      f: 'From',
      t: 'To',
      v: 'Via',
      l: 'Content-Length',
      c: 'Content-Type',
      k: 'Supported',
      s: 'Subject',
      e: 'Content-Encoding',
      o: 'Event',
      u: 'Allow-Events',
      x: 'Session-Expires',
      r: 'Refer-To',
      b: 'Referred-By',
    };
    for (const [k, v] of Object.entries(expect)) {
      assert.equal(COMPACT_FORMS[k], v);
      assert.equal(canonicalName(k.toUpperCase()), v);
    }
    assert.equal(headerKey('CALL-ID'), 'call-id');
    assert.equal(canonicalName('cseq'), 'CSeq');
    assert.equal(canonicalName('X-Custom'), 'X-Custom');
  });

  it('get/set/remove headers in compact and long forms', () => {
    const r = parseMessage(
      Buffer.from(
        'OPTIONS sip:a@b.com SIP/2.0\r\nv: SIP/2.0/UDP h.com;branch=z9hG4bK1\r\nf: <sip:x@y.com>;tag=1\r\nt: <sip:a@b.com>\r\ni: cid\r\nCSeq: 1 OPTIONS\r\nk: timer\r\nl: 0\r\n\r\n',
      ),
    );
    assert.ok(r.ok);
    const m = r.msg;
    assert.equal(getHeader(m, 'Call-ID'), 'cid');
    assert.equal(getHeader(m, 'supported'), 'timer');
    setHeader(m, 'Supported', '100rel');
    assert.equal(getHeader(m, 'k'), '100rel');
    assert.equal(m.headers[5]!.name, 'Supported');
    assert.equal(removeHeaders(m, 'Supported'), 1);
    assert.equal(getHeader(m, 'k'), undefined);
  });
});
