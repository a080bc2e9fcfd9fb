// RFC 5118 IPv6 torture tests: one test per file.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SipUri, Uri } from '../../src/sip/message/index.js';
import { isIPv6, parseUri } from '../../src/sip/message/index.js';
import { t5118, req, rejected } from './helpers.js';

function sip(u: Uri | undefined): SipUri {
  assert.ok(u);
  assert.equal(u.kind, 'sip');
  return u as SipUri;
}

describe('RFC 5118', () => {
  it('4.1 ipv6-good: IPv6 reference in R-URI, Via and Contact', () => {
    const m = req(t5118('ipv6-good'));
    const ru = sip(m.ruri);
    assert.equal(ru.host, '[2001:db8::10]');
    assert.equal(ru.hostType, 'ipv6');
    assert.equal(ru.user, null);
    assert.equal(ru.port, null);
    assert.equal(m.core!.via[0]!.host, '[2001:db8::9:1]');
    assert.equal(m.core!.via[0]!.port, null);
    const ct = sip(m.core!.contact[0]!.uri);
    assert.equal(ct.host, '[2001:db8::1]');
    assert.equal(ct.user, 'caller');
    assert.equal(m.core!.contact[0]!.displayName, 'Caller');
  });

  it('4.2 ipv6-bad: IPv6 address without brackets in the R-URI → 400', () => {
    const r = rejected(t5118('ipv6-bad'));
    assert.equal(r.status, 400);
    assert.match(r.reason, /Request-URI/);
    assert.equal(parseUri('sip:2001:db8::10'), null);
  });

  it('4.3 port-ambiguous: the last group is part of the address, not a port', () => {
    const m = req(t5118('port-ambiguous'));
    const ru = sip(m.ruri);
    assert.equal(ru.host, '[2001:db8::10:5070]');
    assert.equal(ru.port, null);
  });

  it('4.4 port-unambiguous: port outside the brackets', () => {
    const m = req(t5118('port-unambiguous'));
    const ru = sip(m.ruri);
    assert.equal(ru.host, '[2001:db8::10]');
    assert.equal(ru.port, 5070);
  });

  it('4.5 via-received-param-with-delim: received=[IPv6] accepted', () => {
    const m = req(t5118('via-received-param-with-delim'));
    const v = m.core!.via[0]!;
    assert.equal(v.host, '[2001:db8::9:1]');
    assert.equal(v.received, '[2001:db8::9:255]');
    assert.equal(v.branch, 'z9hG4bKas3-111');
    assert.equal(m.method, 'BYE');
  });

  it('4.5 via-received-param-no-delim: received=IPv6 accepted', () => {
    const m = req(t5118('via-received-param-no-delim'));
    const v = m.core!.via[0]!;
    assert.equal(v.received, '2001:db8::9:255');
    assert.equal(v.branch, 'z9hG4bKas3');
  });

  it('4.6 ipv6-in-sdp: SDP with unbracketed IPv6', () => {
    const m = req(t5118('ipv6-in-sdp'));
    assert.equal(m.body.length, 251);
    assert.ok(m.body.toString().includes('c=IN IP6 2001:db8::20\r\n'));
    assert.equal(sip(m.core!.to!.uri).host, '[2001:db8::10]');
    assert.equal(m.core!.via[0]!.host, '[2001:db8::20]');
  });

  it('4.7 mult-ip-in-header: IPv4 and IPv6 Vias mixed', () => {
    const m = req(t5118('mult-ip-in-header'));
    assert.deepEqual(
      m.core!.via.map((v) => [v.transport, v.host, v.port, v.received]),
      [
        ['UDP', '[2001:db8::9:1]', 6050, null],
        ['UDP', '192.0.2.1', null, null],
        ['TCP', '[2001:db8::9:255]', null, '192.0.2.200'],
      ],
    );
  });

  it('4.8 mult-ip-in-sdp: one IPv4 and one IPv6 stream', () => {
    const m = req(t5118('mult-ip-in-sdp'));
    assert.equal(m.body.length, 189);
    const sdp = m.body.toString();
    assert.ok(sdp.includes('c=IN IP4 192.0.2.1\r\n'));
    assert.ok(sdp.includes('c=IN IP6 2001:db8::1\r\n'));
    assert.equal(sip(m.core!.contact[0]!.uri).host, '[2001:db8::9:1]');
  });

  it('4.9 ipv4-mapped-ipv6: ::ffff:192.0.2.2 in Via, Contact, SDP', () => {
    const m = req(t5118('ipv4-mapped-ipv6'));
    assert.equal(m.core!.via[0]!.host, '[::ffff:192.0.2.10]');
    assert.equal(m.core!.via[0]!.port, 19823);
    assert.equal(m.core!.via[1]!.host, '[::ffff:192.0.2.2]');
    assert.equal(sip(m.core!.contact[0]!.uri).host, '[::ffff:192.0.2.2]');
    assert.equal(m.core!.contact[0]!.displayName, 'T. desk phone');
    assert.equal(m.body.length, 245);
    assert.ok(m.body.toString().includes('c=IN IP6 ::ffff:192.0.2.2\r\n'));
  });

  it('4.10 ipv6-bug-abnf-3-colons: rejected (strict, RFC 5954)', () => {
    const r = rejected(t5118('ipv6-bug-abnf-3-colons'));
    assert.equal(r.status, 400);
    assert.equal(isIPv6('2001:db8:::192.0.2.1'), false);
  });

  it('4.10 ipv6-correct-abnf-2-colons: accepted', () => {
    const m = req(t5118('ipv6-correct-abnf-2-colons'));
    assert.equal(sip(m.ruri).host, '[2001:db8::192.0.2.1]');
    assert.equal(sip(m.core!.to!.uri).host, '[2001:db8::192.0.2.1]');
    assert.equal(m.core!.cseq!.seq, 689);
  });
});
