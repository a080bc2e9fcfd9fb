import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocationStore, contactKey } from '../../../src/sip/services/location.js';
import { buildPidf, parsePidf, PidfError } from '../../../src/sip/services/pidf.js';
import { CallStates, statusNumber } from '../../../src/sip/services/status.js';

const c = (contact: string, expires: number) => ({
  contact,
  expires,
  transport: 'udp' as const,
  srcIp: '10.0.0.1',
  srcPort: 5062,
  userAgent: 'ua',
  q: 1,
});

test('location: add, refresh, several per user, remove, out-of-order CSeq', () => {
  let now = 1000;
  const l = new LocationStore(3, () => now);
  const changes: string[] = [];
  l.onChange = (x) => changes.push(`${x.username}:${x.online}`);
  let r = l.update('bob', 'cid', 1, [c('sip:bob@10.0.0.1:5062', 60)]);
  assert.ok(r.ok);
  assert.equal(l.isOnline('bob'), true);
  r = l.update('bob', 'cid2', 1, [c('sip:bob@10.0.0.2', 60)]);
  assert.ok(r.ok && r.bindings.length === 2);
  // refresh with a lower CSeq of the same Call-ID: 500
  const bad = l.update('bob', 'cid', 1, [c('sip:bob@10.0.0.1:5062', 60)]);
  assert.deepEqual(bad, { ok: false, status: 500, reason: 'Out of order CSeq for this binding' });
  // SIP:BOB@10.0.0.1 host case-insensitive same binding
  assert.equal(contactKey('SIP:bob@EXAMPLE.com'), contactKey('sip:bob@example.com'));
  r = l.update('bob', 'cid', 2, [c('sip:bob@10.0.0.1:5062', 0)]);
  assert.ok(r.ok && r.removed.length === 1 && r.bindings.length === 1);
  assert.deepEqual(l.size(), { users: 1, bindings: 1 });
  assert.deepEqual(changes, ['bob:true', 'bob:true', 'bob:true']);
});

test('location: limit per user, wildcard removal, expiry sweep reports offline', () => {
  let now = 0;
  const l = new LocationStore(2, () => now);
  const changes: string[] = [];
  l.onChange = (x) => changes.push(`${x.username}:${x.online}`);
  assert.ok(l.update('a', 'x', 1, [c('sip:a@h1', 10), c('sip:a@h2', 20)]).ok);
  const over = l.update('a', 'y', 1, [c('sip:a@h3', 10)]);
  assert.equal(over.ok, false);
  assert.equal(l.lookup('a').length, 2, 'a refused update changes nothing');
  now = 11_000;
  assert.equal(l.lookup('a').length, 1, 'expired bindings are not returned before the sweep');
  l.sweep();
  assert.deepEqual(l.size(), { users: 1, bindings: 1 });
  now = 21_000;
  l.sweep();
  assert.equal(l.isOnline('a'), false);
  assert.deepEqual(l.size(), { users: 0, bindings: 0 });
  assert.ok(l.update('b', 'z', 1, [c('sip:b@h', 10)]).ok);
  assert.ok(l.removeAll('b', 'z', 2).ok);
  assert.equal(l.isOnline('b'), false);
  assert.deepEqual(changes.slice(-2), ['b:true', 'b:false']);
});

test('PIDF: build → parse round trip, escaping, prefixed elements, refusals', () => {
  const doc = buildPidf('sip:bob@example.com', { basic: 'open', note: 'Away <back> & "soon"' });
  assert.match(doc, /<basic>open<\/basic>/);
  assert.deepEqual(parsePidf(doc), { basic: 'open', note: 'Away <back> & "soon"' });
  const prefixed =
    '<?xml version="1.0"?><p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><p:tuple id="x"><p:status><p:basic>closed</p:basic></p:status></p:tuple><p:note xml:lang="en">Busy &#x263A;</p:note></p:presence>';
  assert.deepEqual(parsePidf(prefixed), { basic: 'closed', note: 'Busy \u263a' });
  assert.throws(() => parsePidf('<html/>'), PidfError);
  assert.throws(
    () => parsePidf('<!DOCTYPE x [<!ENTITY a "b">]><presence xmlns="urn:ietf:params:xml:ns:pidf"/>'),
    PidfError,
  );
  assert.throws(() => parsePidf(doc.replace('>open<', '>maybe<')), /bad <basic>/);
});

test('status numbers: 0 missing, 1 offline, 2 online, call states win', () => {
  const cs = new CallStates();
  assert.equal(statusNumber(false, true, undefined), 0);
  assert.equal(statusNumber(true, false, undefined), 1);
  assert.equal(statusNumber(true, true, undefined), 2);
  cs.set('a', 3);
  assert.equal(statusNumber(true, true, cs.get('a')), 3);
  cs.set('a', 4);
  assert.equal(statusNumber(true, false, cs.get('a')), 4);
  cs.set('a', null);
  assert.equal(cs.get('a'), undefined);
});
