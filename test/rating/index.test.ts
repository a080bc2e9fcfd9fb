import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrefixIndex } from '../../src/domain/rating/index.js';
import { toE164, countryCodeOf, InvalidNumberError } from '../../src/domain/rating/normalize.js';
import type { Rate } from '../../src/domain/rating/rate.js';

let nextId = 1;
const rate = (prefix: string, destination: string, extra: Partial<Rate> = {}): Rate => ({
  id: nextId++,
  planId: 1,
  prefix,
  destination,
  price: 10_000,
  connectfee: 0,
  minduration: 1,
  increment: 1,
  currency: 'USD',
  validFrom: null,
  validTo: null,
  ...extra,
});

test('longest prefix wins; no match is undefined', () => {
  const ix = new PrefixIndex(4);
  ix.add(rate('3', 'Europe'));
  ix.add(rate('36', 'Hungary'));
  ix.add(rate('3620', 'Hungary mobile'));
  ix.add(rate('1', 'NANP'));
  assert.equal(ix.lookup('36201234567', 0)?.destination, 'Hungary mobile');
  assert.equal(ix.lookup('3630123', 0)?.destination, 'Hungary');
  assert.equal(ix.lookup('362', 0)?.destination, 'Hungary');
  assert.equal(ix.lookup('33123', 0)?.destination, 'Europe');
  assert.equal(ix.lookup('12125551234', 0)?.destination, 'NANP');
  assert.equal(ix.lookup('44123', 0), undefined);
  assert.equal(ix.lookup('', 0), undefined);
  assert.equal(ix.size, 4);
});

test('validity dates: a rate applies only within them; an expired long prefix lets a shorter one apply', () => {
  const ix = new PrefixIndex();
  const jan = Date.UTC(2026, 0, 1);
  const feb = Date.UTC(2026, 1, 1);
  ix.add(rate('44', 'UK'));
  ix.add(rate('447', 'UK mobile old', { validTo: jan }));
  ix.add(rate('447', 'UK mobile new', { validFrom: jan, validTo: feb }));
  assert.equal(ix.lookup('447700900', jan - 1)?.destination, 'UK mobile old');
  assert.equal(ix.lookup('447700900', jan)?.destination, 'UK mobile new', 'valid_from inclusive, valid_to exclusive');
  assert.equal(ix.lookup('447700900', feb - 1)?.destination, 'UK mobile new');
  assert.equal(ix.lookup('447700900', feb)?.destination, 'UK', 'both expired: the shorter prefix');
});

test('agrees with a naive longest-prefix scan on 20,000 random prefixes', () => {
  let seed = 42;
  const rnd = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const ix = new PrefixIndex();
  const all = new Map<string, string>();
  while (all.size < 20_000) {
    const len = 1 + Math.floor(rnd() * 7);
    let p = String(1 + Math.floor(rnd() * 9));
    while (p.length < len) p += String(Math.floor(rnd() * 10));
    if (all.has(p)) continue;
    all.set(p, `d${p}`);
    ix.add(rate(p, `d${p}`));
  }
  for (let i = 0; i < 5_000; i++) {
    let n = String(1 + Math.floor(rnd() * 9));
    while (n.length < 11) n += String(Math.floor(rnd() * 10));
    let want: string | undefined;
    for (let l = n.length; l >= 1 && !want; l--) want = all.get(n.slice(0, l));
    assert.equal(ix.lookup(n, 0)?.destination, want, n);
  }
});

test('prefixes must be digits', () => {
  assert.throws(() => new PrefixIndex().add(rate('36a', 'x')), RangeError);
});

const o = { internationalPrefix: '00', nationalPrefix: '0', countryCode: '36' };

test('normalisation: +, 00, national, punctuation, URIs', () => {
  assert.equal(toE164('+36 (1) 234-5678', o), '3612345678');
  assert.equal(toE164('0036 1 234 5678', o), '3612345678');
  assert.equal(toE164('0 20 123 4567', o), '36201234567');
  assert.equal(toE164('3612345678', o), '3612345678', 'already international digits');
  assert.equal(toE164('sip:+12125551234@example.com', o), '12125551234');
  assert.equal(toE164('12.125.551.234', o), '12125551234');
  assert.equal(
    toE164('011442079460000', { internationalPrefix: '011', nationalPrefix: '1', countryCode: '1' }),
    '442079460000',
  );
  assert.equal(
    toE164('12125551234', { internationalPrefix: '011', nationalPrefix: '1', countryCode: '1' }),
    '12125551234',
  );
});

test('normalisation errors', () => {
  assert.throws(() => toE164('06201234567', { ...o, countryCode: '' }), /no country calling code/);
  assert.throws(() => toE164('abc', o), InvalidNumberError);
  assert.throws(() => toE164('  ', o), /empty/);
  assert.throws(() => toE164('+', o), InvalidNumberError);
  assert.throws(() => toE164('+123456789012345678901', o), /digits/);
});

test('country code of a user: tb_users.country, else defaultcountrycode', () => {
  assert.equal(countryCodeOf('36', '1'), '36');
  assert.equal(countryCodeOf('+44', '1'), '44');
  assert.equal(countryCodeOf('Hungary', '1'), '1');
  assert.equal(countryCodeOf('', ''), '');
});
