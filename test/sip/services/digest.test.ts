import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DigestAuth, parseDigestHeader, digestResponse, ha1, sameUri } from '../../../src/sip/services/digest.js';
import { authorize } from './fake.js';

const pw = (u: string) => (u === 'alice' ? 'secret' : null);

test('parseDigestHeader: quoted, unquoted, escapes; refuses duplicates and non-Digest', () => {
  const c = parseDigestHeader('Digest username="a\\"b", realm="r", nc=00000001, qop=auth, uri="sip:x"');
  assert.ok(c);
  assert.equal(c.params.get('username'), 'a"b');
  assert.equal(c.params.get('nc'), '00000001');
  assert.equal(parseDigestHeader('Basic abc'), null);
  assert.equal(parseDigestHeader('Digest realm="a", realm="b"'), null);
  assert.equal(parseDigestHeader('Digest realm="unterminated'), null);
});

test('RFC 2617 §3.5 example response (MD5, qop=auth)', () => {
  const h1 = ha1('MD5', 'Mufasa', 'testrealm@host.com', 'Circle Of Life');
  const r = digestResponse('MD5', h1, 'dcd98b7102dd2f0e8b11d0f600bfb0c093', 'GET', '/dir/index.html', {
    qop: 'auth',
    nc: '00000001',
    cnonce: '0a4f113b',
  });
  assert.equal(r, '6629fae49393a05397450978507c4ef1');
});

test('RFC 7616 §3.9.1 example (SHA-256)', () => {
  const h1 = ha1('SHA-256', 'Mufasa', 'http-auth@example.org', 'Circle of Life');
  const r = digestResponse('SHA-256', h1, '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v', 'GET', '/dir/index.html', {
    qop: 'auth',
    nc: '00000001',
    cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
  });
  assert.equal(r, '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1');
});

test('MD5 and SHA-256 accepted; wrong password and unknown user give the same "bad"', async () => {
  const d = new DigestAuth({ ttlMs: 60_000 });
  const [sha, md5] = d.challenges('r.example');
  assert.match(sha!, /algorithm=SHA-256/);
  assert.match(md5!, /algorithm=MD5/);
  // both challenges carry the same nonce, so the second use counts on (nc=2)
  for (const [i, ch] of [sha!, md5!].entries()) {
    const ok = await d.verify(
      [authorize(ch, 'alice', 'secret', 'REGISTER', 'sip:r.example', i + 1)],
      'r.example',
      'REGISTER',
      'sip:r.example',
      pw,
    );
    assert.equal(ok.ok, true);
  }
  const wrong = await d.verify(
    [authorize(md5!, 'alice', 'nope', 'REGISTER', 'sip:r.example', 3)],
    'r.example',
    'REGISTER',
    'sip:r.example',
    pw,
  );
  const unknown = await d.verify(
    [authorize(md5!, 'mallory', 'nope', 'REGISTER', 'sip:r.example', 3)],
    'r.example',
    'REGISTER',
    'sip:r.example',
    pw,
  );
  assert.deepEqual([wrong.ok, !wrong.ok && wrong.why], [false, 'bad']);
  assert.deepEqual([unknown.ok, !unknown.ok && unknown.why], [false, 'bad']);
});

test('a replayed nonce count is refused; higher counts pass; other realm = missing', async () => {
  const d = new DigestAuth({ ttlMs: 60_000 });
  const [ch] = d.challenges('r');
  const a1 = authorize(ch!, 'alice', 'secret', 'REGISTER', 'sip:r', 1);
  assert.equal((await d.verify([a1], 'r', 'REGISTER', 'sip:r', pw)).ok, true);
  const again = await d.verify([a1], 'r', 'REGISTER', 'sip:r', pw);
  assert.equal(again.ok, false);
  assert.equal(!again.ok && again.detail, 'replayed nonce count');
  assert.equal(
    (await d.verify([authorize(ch!, 'alice', 'secret', 'REGISTER', 'sip:r', 2)], 'r', 'REGISTER', 'sip:r', pw)).ok,
    true,
  );
  const other = await d.verify([a1], 'other', 'REGISTER', 'sip:r', pw);
  assert.equal(!other.ok && other.why, 'missing');
});

test('without qop a nonce is single-use (second use is stale)', async () => {
  const d = new DigestAuth({ ttlMs: 60_000 });
  const [ch] = d.challenges('r');
  const a = authorize(ch!, 'alice', 'secret', 'REGISTER', 'sip:r', 1, { noQop: true });
  assert.equal((await d.verify([a], 'r', 'REGISTER', 'sip:r', pw)).ok, true);
  const r = await d.verify([a], 'r', 'REGISTER', 'sip:r', pw);
  assert.equal(!r.ok && r.why, 'stale');
});

test('expired and forged nonces: stale when the digest is right, bad when not', async () => {
  let now = 1_000_000;
  const d = new DigestAuth({ ttlMs: 5000, now: () => now });
  const [ch] = d.challenges('r');
  const a = authorize(ch!, 'alice', 'secret', 'REGISTER', 'sip:r');
  now += 6000;
  const r = await d.verify([a], 'r', 'REGISTER', 'sip:r', pw);
  assert.equal(!r.ok && r.why, 'stale');
  assert.equal(d.checkNonce('x'.repeat(43), 'r').state, 'invalid');
  const forged = ch!.replace(
    /nonce="([^"]+)"/,
    (_m, n: string) => `nonce="${n.slice(0, 10)}${n[10] === 'A' ? 'B' : 'A'}${n.slice(11)}"`,
  );
  assert.equal(d.checkNonce(/nonce="([^"]+)"/.exec(forged)![1]!, 'r').state, 'invalid');
  const bad = await d.verify([authorize(ch!, 'alice', 'wrong', 'REGISTER', 'sip:r')], 'r', 'REGISTER', 'sip:r', pw);
  assert.equal(!bad.ok && bad.why, 'bad');
});

test('digest uri must match the Request-URI; unsupported algorithm refused', async () => {
  const d = new DigestAuth({ ttlMs: 60_000, algorithms: ['MD5'], accept: ['MD5'] });
  const [ch] = d.challenges('r');
  const a = authorize(ch!, 'alice', 'secret', 'REGISTER', 'sip:other');
  const r = await d.verify([a], 'r', 'REGISTER', 'sip:r', pw);
  assert.equal(!r.ok && r.detail, 'digest uri differs from the Request-URI');
  const sha = authorize(ch!, 'alice', 'secret', 'REGISTER', 'sip:r', 1, { alg: 'SHA-256' });
  const r2 = await d.verify([sha], 'r', 'REGISTER', 'sip:r', pw);
  assert.equal(!r2.ok && r2.detail, 'unsupported algorithm');
});

test('sameUri: equal, case of host, or the Request-URI without its user part; nothing else', () => {
  assert.equal(sameUri('sip:bob@EXAMPLE.com', 'sip:bob@example.com'), true);
  assert.equal(sameUri('sip:127.0.0.1:5060', 'sip:bob@127.0.0.1:5060'), true);
  assert.equal(sameUri('sip:127.0.0.1:5061', 'sip:bob@127.0.0.1:5060'), false);
  assert.equal(sameUri('sip:alice@127.0.0.1:5060', 'sip:bob@127.0.0.1:5060'), false);
  assert.equal(sameUri('sip:other.example', 'sip:other.example.net'), false);
});
