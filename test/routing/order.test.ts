/** Unit tests of the pure routing helpers: gateway order (prefix, priority, weights), number rewriting, addresses, input validation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  orderGateways,
  dialNumber,
  normalizeIp,
  inboundIps,
  validateGatewayInput,
  GatewayError,
  type Gateway,
} from '../../src/domain/routing/service.js';
import { mulberry32 } from '../helpers/random.js';

let nextId = 1;
function gw(name: string, over: Partial<Gateway> = {}): Gateway {
  return {
    id: nextId++,
    name,
    host: '192.0.2.1',
    port: 5060,
    transport: 'udp',
    username: '',
    passwordEnc: '',
    prefix: '',
    strip: 0,
    addprefix: '',
    priority: 10,
    weight: 1,
    inboundIp: '',
    enabled: true,
    createdAt: 0,
    dns: '',
    registration: { register: false, expires: 3600, user: '', authUser: '', realm: '', contact: '' },
    ...over,
  };
}

test('order: only matching enabled gateways; longest prefix first, then priority ascending', () => {
  const list = [
    gw('any', { prefix: '', priority: 0 }),
    gw('de', { prefix: '49', priority: 5 }),
    gw('de-mobile-b', { prefix: '4917', priority: 20 }),
    gw('de-mobile-a', { prefix: '4917', priority: 1 }),
    gw('fr', { prefix: '33', priority: 0 }),
    gw('off', { prefix: '4917', priority: 0, enabled: false }),
  ];
  const names = orderGateways(list, '491701234567', () => 0.5).map((g) => g.name);
  assert.deepEqual(names, ['de-mobile-a', 'de-mobile-b', 'de', 'any']);
  assert.deepEqual(
    orderGateways(list, '33123', () => 0.5).map((g) => g.name),
    ['fr', 'any'],
  );
  assert.deepEqual(
    orderGateways(list, '441234', () => 0.5).map((g) => g.name),
    ['any'],
  );
  assert.deepEqual(
    orderGateways([gw('x', { prefix: '49', enabled: false })], '4930', () => 0.5),
    [],
  );
});

test('order: weights share the first place in proportion among equal prefix and priority; weight 0 only last', () => {
  const rng = mulberry32(42);
  const list = [
    gw('w1', { weight: 1 }),
    gw('w3', { weight: 3 }),
    gw('zero', { weight: 0 }),
    gw('later', { priority: 11, weight: 1000 }),
  ];
  const first = new Map<string, number>();
  const N = 20_000;
  for (let i = 0; i < N; i++) {
    const o = orderGateways(list, '4930', rng).map((g) => g.name);
    assert.equal(o.length, 4);
    // weight 0 after every positive weight of its group, the higher priority number after the whole group
    assert.equal(o[2], 'zero');
    assert.equal(o[3], 'later');
    first.set(o[0]!, (first.get(o[0]!) ?? 0) + 1);
  }
  const share = (first.get('w3') ?? 0) / N;
  assert.ok(share > 0.73 && share < 0.77, `w3 first in ${share} of the cases, expected ~0.75`);
  assert.equal((first.get('w1') ?? 0) + (first.get('w3') ?? 0), N);
});

test('order: equal weights are shuffled (both orders occur), the input array is not changed', () => {
  const rng = mulberry32(7);
  const list = [gw('a'), gw('b'), gw('c')];
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++)
    seen.add(
      orderGateways(list, '1', rng)
        .map((g) => g.name)
        .join(),
    );
  assert.equal(seen.size, 6, [...seen].join(' | '));
  assert.deepEqual(
    list.map((g) => g.name),
    ['a', 'b', 'c'],
  );
});

test('dialNumber: strip then addprefix; nothing left → undefined', () => {
  assert.equal(dialNumber({ strip: 0, addprefix: '' }, '4930123'), '4930123');
  assert.equal(dialNumber({ strip: 2, addprefix: '0' }, '4930123'), '030123');
  assert.equal(dialNumber({ strip: 0, addprefix: '+' }, '4930123'), '+4930123');
  assert.equal(dialNumber({ strip: 7, addprefix: '' }, '4930123'), undefined);
  assert.equal(dialNumber({ strip: 7, addprefix: '99' }, '4930123'), '99');
  assert.equal(dialNumber({ strip: 8, addprefix: '99' }, '4930123'), undefined);
});

test('addresses: normalised for comparison; inbound_ip lists', () => {
  assert.equal(normalizeIp(' 192.0.2.7 '), '192.0.2.7');
  assert.equal(normalizeIp('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(normalizeIp('[2001:DB8::1]'), '2001:db8::1');
  assert.equal(normalizeIp('fe80::1%eth0'), 'fe80::1');
  assert.equal(normalizeIp('gw.example.com'), '');
  assert.equal(normalizeIp('999.1.1.1'), '');
  assert.deepEqual(inboundIps('192.0.2.7, 2001:db8::1;bogus'), ['192.0.2.7', '2001:db8::1']);
});

test('validateGatewayInput: defaults, normalisation and clear errors', () => {
  const g = validateGatewayInput({ name: 'gw1', host: '192.0.2.1' });
  assert.deepEqual(g, {
    name: 'gw1',
    host: '192.0.2.1',
    port: 5060,
    transport: 'udp',
    username: '',
    password: '',
    prefix: '',
    strip: 0,
    addprefix: '',
    priority: 10,
    weight: 1,
    inboundIp: '',
    enabled: true,
    dns: '',
    registration: { register: false, expires: 3600, user: '', authUser: '', realm: '', contact: '' },
  });
  // RFC 3263: a name without port is looked up by NAPTR (no transport) or SRV (transport given); with a port, A only
  assert.equal(validateGatewayInput({ name: 'n', host: 'sip.example' }).dns, 'naptr');
  assert.equal(validateGatewayInput({ name: 'n', host: 'sip.example', transport: 'tcp' }).dns, 'srv');
  assert.equal(validateGatewayInput({ name: 'n', host: 'sip.example', port: '5070' }).dns, '');
  const r = validateGatewayInput({
    name: 'trunk',
    host: 'sip.example',
    username: 'acct',
    register: '1',
    register_expires: '120',
    auth_user: 'auth1',
    realm: 'sip.example',
    register_contact: 'in42',
  });
  assert.deepEqual(r.registration, {
    register: true,
    expires: 120,
    user: '',
    authUser: 'auth1',
    realm: 'sip.example',
    contact: 'in42',
  });
  const t = validateGatewayInput({
    name: 'tls-gw',
    host: '[2001:db8::5]',
    transport: 'TLS',
    prefix: '+49',
    strip: '2',
    addprefix: '0',
    priority: '3',
    weight: '0',
    inbound_ip: '192.0.2.9 ::ffff:192.0.2.10',
    enabled: '0',
  });
  assert.equal(t.port, 5061);
  assert.equal(t.host, '2001:db8::5');
  assert.equal(t.transport, 'tls');
  assert.equal(t.prefix, '49');
  assert.equal(t.inboundIp, '192.0.2.9,192.0.2.10');
  assert.equal(t.enabled, false);
  assert.equal(t.weight, 0);
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ host: 'x.example' }, /^name: the gateway name is missing/],
    [{ name: 'bad name', host: 'x' }, /^name: 1-64 characters/],
    [{ name: 'g' }, /^host: the gateway address/],
    [{ name: 'g', host: 'x.example:5060' }, /^host: "x.example:5060" is neither/],
    [{ name: 'g', host: 'x', port: '70000' }, /^port: expected a whole number from 1 to 65535, got "70000"/],
    [{ name: 'g', host: 'x', transport: 'sctp' }, /^transport: expected udp, tcp or tls/],
    [{ name: 'g', host: 'x', prefix: '49a' }, /^prefix: 0-32 digits/],
    [{ name: 'g', host: 'x', strip: '-1' }, /^strip: expected a whole number from 0 to 32/],
    [{ name: 'g', host: 'x', addprefix: '0x' }, /^addprefix:/],
    [{ name: 'g', host: 'x', weight: '1.5' }, /^weight:/],
    [{ name: 'g', host: 'x', inbound_ip: '192.0.2.1,gw.example' }, /^inbound_ip: "gw.example" is not an IP address/],
    [{ name: 'g', host: 'x', password: 'a\nb' }, /^password: at most 128 printable/],
    [{ name: 'g', host: 'x', register: 'maybe' }, /^register: expected 1 or 0/],
    [{ name: 'g', host: 'x', register: '1' }, /^register_user: registering needs the trunk account/],
    [{ name: 'g', host: 'x', register: '1', username: 'u', register_expires: '5' }, /^register_expires: expected/],
    [{ name: 'g', host: 'x', register: '1', register_user: 'a b' }, /^register_user: at most 128 characters/],
    [{ name: 'g', host: 'x', register: '1', username: 'u', realm: 'a"b' }, /^realm: at most 128 printable/],
  ];
  for (const [p, re] of bad) {
    assert.throws(
      () => validateGatewayInput(p),
      (e: unknown) => e instanceof GatewayError && re.test(e.message),
      JSON.stringify(p),
    );
  }
});
