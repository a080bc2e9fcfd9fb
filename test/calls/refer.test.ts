/** The Refer-To reader of the transfer (src/sip/calls/refer.ts): target user and Replaces (RFC 3891 §6.1). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReferTo } from '../../src/sip/calls/refer.js';

test('a blind Refer-To gives the user part, with or without angle brackets and parameters', () => {
  assert.deepEqual(parseReferTo('<sip:4930123456@example.com>'), { user: '4930123456' });
  assert.deepEqual(parseReferTo('sip:carol@example.com;transport=udp'), { user: 'carol' });
  assert.deepEqual(parseReferTo('"Carol" <sip:carol@example.com:5060;user=phone>;x=1'), { user: 'carol' });
});

test('an attended Refer-To carries the escaped Replaces: Call-ID and both tags', () => {
  const r = parseReferTo('<sip:carol@example.com?Replaces=abc%40host%3Bto-tag%3D12%3Bfrom-tag%3D34&Require=replaces>');
  assert.deepEqual(r, { user: 'carol', replaces: { callId: 'abc@host', toTag: '12', fromTag: '34' } });
  // the tags in either order, case-insensitive header name
  const s = parseReferTo('<sip:carol@example.com?replaces=x%3Bfrom-tag%3Db%3Bto-tag%3Da>');
  assert.deepEqual(s?.replaces, { callId: 'x', toTag: 'a', fromTag: 'b' });
});

test('what is not a transfer target is refused: no user, not SIP, a Replaces without its tags, bad escapes', () => {
  assert.equal(parseReferTo('<sip:example.com>'), undefined);
  assert.equal(parseReferTo('<tel:+4930123456>'), undefined);
  assert.equal(parseReferTo('<mailto:carol@example.com>'), undefined);
  assert.equal(parseReferTo('<sip:carol@example.com?Replaces=abc%3Bto-tag%3D12>'), undefined);
  assert.equal(parseReferTo('<sip:carol@example.com?Replaces=%E0%A4%A>'), undefined);
  assert.equal(parseReferTo(''), undefined);
});
