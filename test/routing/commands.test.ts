/**
 * Routing through the whole API pipeline (gateway.handle, authentication and levels) and RoutingService.route on
 * real state: addgateway / delgateway / gateways / routingtest, user and DID routes, forwarding rules, rating and
 * credit refusals, gateway inbound trust, failover order.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, ADMIN_PASSWORD, API_KEY, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { importTariffsCsv } from '../../src/domain/rating/csv.js';
import { RoutingService } from '../../src/domain/routing/service.js';
import type { User } from '../../src/domain/accounts/users.js';

let t: TestServer;
const LOCAL = src('127.0.0.1');
const REMOTE = src('203.0.113.7');
const H = 'prefix,destination,price,connectfee,minduration,increment,currency\n';
const as = (user: string, pw: string) => ({ authkey: API_KEY, authid: user, authpwd: pw });
const handle = (e: string, p: Record<string, string>, s = REMOTE) => t.srv.gateway.handle(req(e, p, s));
const admin = as('admin', ADMIN_PASSWORD);
const boss = as('boss', 'bosspw'); // an admin-type user
const rita = as('rita', 'ritapw'); // reseller: level 8, below the level 6 of these commands
const bob = as('bob', 'bobpw'); // end user
const GW_IP = '198.51.100.20';

const user = async (name: string): Promise<User> => (await t.srv.services.users.byUsername(name))!;

before(async () => {
  t = await startTestServer({ defaultcountrycode: '1', apilimituser: '0', apilimitip: '0' });
  const h = (e: string, p: Record<string, string>) => t.srv.gateway.handle(req(e, p, LOCAL));
  const mk = async (p: Record<string, string>) =>
    assert.equal((await h('newuseri', { u_currency: 'USD', ...p })).ok, true, JSON.stringify(p));
  await mk({ u_username: 'boss', u_password: 'bosspw', u_type: 'admin' });
  await mk({ u_username: 'rita', u_password: 'ritapw', u_type: 'reseller' });
  await mk({ u_username: 'bob', u_password: 'bobpw', u_country: '36', u_credit: '1.00' });
  await mk({ u_username: 'poor', u_password: 'poorpw', u_credit: '0.001' });
  await mk({ u_username: 'alice', u_password: 'alicepw', u_did: '4930555000' });
  await mk({ u_username: '1001', u_password: 'extpw' }); // an extension
  await mk({ u_username: 'carol', u_password: 'carolpw' });
  await mk({ u_username: 'dave', u_password: 'davepw' });
  await mk({ u_username: 'eur', u_password: 'eurpw', u_currency: 'EUR', u_credit: '5' });
  const db = t.srv.services.storage.db;
  assert.deepEqual(
    (
      await importTariffsCsv(
        db,
        H +
          '1,USA,0.01,0,60,60,USD\n49,Germany,0.012,0,60,60,USD\n4917,Germany mobile,0.06,0.01,30,6,USD\n44,UK,0.02,0,60,60,USD\n',
      )
    ).errors,
    [],
  );
  await t.srv.services.rating.load();
  // carol has an assigned pool number and forwarding rules
  await db
    .insertInto('tb_numbers')
    .values({
      number: '4930555111',
      userid: (await user('carol')).id,
      status: 'assigned',
      locked_until: null,
      created_at: Date.now(),
    })
    .execute();
  await t.srv.services.numbers.setForward((await user('carol')).id, {
    always: '',
    busy: 'dave',
    noanswer: '+49 170 1234567',
  });
});
after(() => t.stop());

test('addgateway: admin adds gateways (password encrypted at rest); errors say what was wrong; level 6 enforced', async () => {
  const a = await handle('addgateway', {
    ...admin,
    name: 'de-a',
    host: '192.0.2.10',
    prefix: '49',
    priority: '5',
    username: 'trunk',
    password: 'S3cret-gw',
  });
  assert.equal(a.ok, true, a.text);
  assert.match(a.text, /^gateway de-a added \(id \d+, 192\.0\.2\.10:5060\/udp, prefix 49, priority 5, weight 1\)$/);
  assert.equal(a.fields?.password, 'set');
  const row = await t.srv.services.storage.db
    .selectFrom('tb_gateways')
    .selectAll()
    .where('name', '=', 'de-a')
    .executeTakeFirstOrThrow();
  assert.match(row.password_enc, /^v1:/);
  assert.ok(!row.password_enc.includes('S3cret-gw'));
  // an admin-type user (not only the server admin) may, a reseller and an end user may not
  assert.equal(
    (
      await handle('addgateway', {
        ...boss,
        name: 'de-mobile',
        host: 'sip.mobile.example',
        port: '5080',
        transport: 'tcp',
        prefix: '4917',
        strip: '2',
        addprefix: '0',
        priority: '50',
      })
    ).ok,
    true,
  );
  for (const who of [rita, bob]) {
    const d = await handle('addgateway', { ...who, name: 'evil', host: '192.0.2.66' });
    assert.equal(d.ok, false);
    assert.match(d.text, /not allowed/);
  }
  assert.equal(
    await t.srv.services.storage.db
      .selectFrom('tb_gateways')
      .select('id')
      .where('name', '=', 'evil')
      .executeTakeFirst(),
    undefined,
  );
  // the trusted local caller is the server admin
  assert.equal(
    (
      await handle(
        'addgateway',
        { name: 'any', host: '2001:db8::9', transport: 'tls', priority: '100', inbound_ip: GW_IP },
        LOCAL,
      )
    ).ok,
    true,
  );
  const dup = await handle('addgateway', { ...admin, name: 'de-a', host: '192.0.2.11' });
  assert.equal(dup.ok, false);
  assert.equal(dup.text, 'a gateway named "de-a" already exists (delgateway it first)');
  const bad = await handle('addgateway', { ...admin, name: 'x', host: '192.0.2.12', transport: 'sctp' });
  assert.equal(bad.text, 'transport: expected udp, tcp or tls, got "sctp"');
  assert.equal((await handle('addgateway', { ...admin, host: '192.0.2.12' })).legacyStatus, 421);
});

test('gateways: lists all gateways without passwords; denied below level 6', async () => {
  const r = await handle('gateways', { ...admin });
  assert.equal(r.ok, true, r.text);
  assert.equal(r.text, '3 gateway(s): de-a,de-mobile,any');
  const a = r.rows!.find((x) => x.name === 'de-a')!;
  assert.equal(a.password, 'set');
  assert.equal(a.username, 'trunk');
  assert.ok(!JSON.stringify(r).includes('S3cret'));
  assert.ok(!JSON.stringify(r).includes('v1:'));
  const m = r.rows!.find((x) => x.name === 'de-mobile')!;
  assert.deepEqual([m.port, m.transport, m.strip, m.addprefix, m.password], [5080, 'tcp', 2, '0', '']);
  assert.equal(r.rows!.find((x) => x.name === 'any')!.port, 5061);
  const d = await handle('gateways', { ...bob });
  assert.equal(d.ok, false);
  assert.match(d.text, /not allowed/);
});

test('routingtest: an outside number → gateways in failover order (longest prefix, priority) with the rate and maxduration', async () => {
  const r = await handle('routingtest', { ...admin, ip: '203.0.113.50', caller: 'bob', called: '0049 170 1234567' });
  assert.equal(r.ok, true, r.text);
  assert.equal(
    r.text,
    'route: gateways for 491701234567: 1. de-mobile sip.mobile.example:5080/tcp number 01701234567; 2. de-a 192.0.2.10:5060/udp number 491701234567; 3. any [2001:db8::9]:5061/tls number 491701234567; rate 0.0600 USD/min to Germany mobile (prefix 4917), maxduration 990 s',
  );
  assert.equal(r.fields?.route, 'gateways');
  assert.equal(r.fields?.gateway, 'de-mobile');
  assert.equal(r.fields?.gateways, 'de-mobile,de-a,any');
  assert.equal(r.fields?.credit, '1.00');
  assert.deepEqual(
    r.rows!.map((x) => x.number),
    ['01701234567', '491701234567', '491701234567'],
  );
  assert.ok(!JSON.stringify(r).includes('S3cret'));
  // positional params in the documented order
  const pos = await t.srv.gateway.handle(
    req('routingtest', {}, LOCAL, { positional: ['', 'bob', '+44 20 7946 0000'] }),
  );
  assert.equal(pos.ok, true, pos.text);
  assert.equal(pos.fields?.gateways, 'any');
  assert.equal(pos.fields?.destination, 'UK');
  // denied to a reseller and an end user
  for (const who of [rita, bob])
    assert.match((await handle('routingtest', { ...who, caller: 'bob', called: '4930123' })).text, /not allowed/);
});

test('routingtest: local users by username, extension and DID (tb_users.did and assigned pool numbers) with forwarding rules', async () => {
  const byName = await handle('routingtest', { ...admin, caller: 'bob', called: 'alice' });
  assert.equal(byName.text, 'route: local user alice');
  assert.equal(byName.fields?.route, 'user');
  assert.equal(byName.fields?.registered, t.srv.services.sip ? 0 : ''); // nobody registered in this test
  assert.equal(
    (await handle('routingtest', { ...admin, caller: 'bob', called: '1001' })).text,
    'route: local user 1001',
  );
  assert.equal(
    (await handle('routingtest', { ...admin, caller: 'bob', called: '+49 30 555000' })).text,
    'route: local user alice',
  );
  const carol = await handle('routingtest', { ...admin, caller: 'bob', called: '4930555111' });
  assert.equal(carol.text, 'route: local user carol (forward busy→dave, noanswer→491701234567)');
  assert.deepEqual(
    [carol.fields?.forward_always, carol.fields?.forward_busy, carol.fields?.forward_noanswer],
    ['', 'dave', '491701234567'],
  );
  // user-to-user needs no credit and no rate
  assert.equal((await handle('routingtest', { ...admin, caller: 'poor', called: 'carol' })).fields?.username, 'carol');
});

test('routingtest: refusals with their SIP status — no rate 404, short credit 402, bad number 484, currency, unknown caller', async () => {
  const noRate = await handle('routingtest', { ...admin, caller: 'bob', called: '+33 1 23456789' });
  assert.equal(noRate.ok, false);
  assert.equal(noRate.text, 'the call would be rejected: 404 no rate for 33123456789 in tariff plan "default"');
  assert.equal(noRate.fields?.status, 404);
  const poor = await handle('routingtest', { ...admin, caller: 'poor', called: '+49 30 1234567' });
  assert.equal(poor.text, 'the call would be rejected: 402 insufficient credit');
  const bad = await handle('routingtest', { ...admin, caller: 'bob', called: 'nobody-here' });
  assert.equal(bad.ok, false);
  assert.match(bad.text, /^the call would be rejected: 484 /);
  assert.equal(
    (await handle('routingtest', { ...admin, caller: 'eur', called: '+49 30 1234567' })).text,
    'the call would be rejected: 403 the rate to 49301234567 is in USD but the account is in EUR',
  );
  const unknown = await handle('routingtest', { ...admin, caller: 'ghost', called: '4930' });
  assert.equal(unknown.text, 'caller: no user or caller number "ghost"');
  assert.equal(unknown.legacyStatus, 404);
  assert.equal((await handle('routingtest', { ...admin, caller: 'bob' })).legacyStatus, 421);
  assert.equal(
    (await handle('routingtest', { ...admin, ip: 'not-an-ip', caller: 'bob', called: '4930' })).text,
    'ip: "not-an-ip" is not an IP address',
  );
});

test('routingtest / gatewayForIp: calls from a gateway inbound_ip reach DIDs without authentication, nothing else', async () => {
  const did = await handle('routingtest', { ...admin, ip: GW_IP, caller: '+1 212 555 0100', called: '4930555000' });
  assert.equal(did.text, 'route: local user alice');
  assert.equal(did.fields?.source, 'gateway any');
  const transit = await handle('routingtest', {
    ...admin,
    ip: `::ffff:${GW_IP}`,
    caller: '12125550100',
    called: '4930999999',
  });
  assert.equal(
    transit.text,
    'the call would be rejected: 404 no user or DID "4930999999" on this server (calls from gateway "any" only reach DIDs)',
  );
  const routing = t.srv.services.routing;
  assert.equal((await routing.gatewayForIp(GW_IP))?.name, 'any');
  assert.equal(await routing.gatewayForIp('198.51.100.21'), undefined);
  // not a gateway and no authenticated user: refused
  const anon = await routing.route({ caller: 'x', called: 'alice', fromIp: '198.51.100.21' });
  assert.deepEqual(anon, {
    kind: 'reject',
    status: 403,
    reason: 'the caller is not authenticated and not a known gateway',
  });
});

test('route(): candidates carry the decrypted password and rewritten number; reservedCredit counts; disabled accounts refused', async () => {
  const routing = t.srv.services.routing;
  const bobU = await user('bob');
  const d = await routing.route({ caller: 'bob', called: '+49 30 1234567', fromIp: '203.0.113.50', user: bobU });
  assert.equal(d.kind, 'gateways');
  if (d.kind !== 'gateways') return;
  assert.equal(d.number, '49301234567');
  assert.equal(d.rate.prefix, '49');
  assert.equal(d.quote.plan.name, 'default');
  assert.equal(d.maxDuration, 4980); // 1.00 at 0.012/min in whole minutes (60/60): 83 min
  assert.deepEqual(
    d.candidates.map((c) => [c.name, c.number, c.username, c.password, c.transport]),
    [
      ['de-a', '49301234567', 'trunk', 'S3cret-gw', 'udp'],
      ['any', '49301234567', '', '', 'tls'],
    ],
  );
  // other live calls of bob reserve 0.995: the rest (0.005) does not pay one minute at 0.012
  assert.deepEqual(
    await routing.route({ caller: 'bob', called: '4930123', fromIp: '', user: bobU, reservedCredit: 995_000 }),
    { kind: 'reject', status: 402, reason: 'insufficient credit' },
  );
  // a disabled callee and a disabled caller
  const s = t.srv.services;
  await s.users.update((await user('dave')).id, { enabled: 0 });
  s.users.clearCache();
  try {
    assert.deepEqual(await routing.route({ caller: 'bob', called: 'dave', fromIp: '', user: bobU }), {
      kind: 'reject',
      status: 403,
      reason: 'the account "dave" is disabled',
    });
    const daveU = await user('dave');
    assert.equal(daveU.enabled, false);
    assert.deepEqual(await routing.route({ caller: 'dave', called: 'alice', fromIp: '', user: daveU }), {
      kind: 'reject',
      status: 403,
      reason: 'the account "dave" is disabled',
    });
  } finally {
    await s.users.update((await user('dave')).id, { enabled: 1 });
    s.users.clearCache();
  }
});

test('failover order: equal prefix and priority are ordered by weight; a disabled or deleted gateway drops out at once', async () => {
  const h = (e: string, p: Record<string, string>) => handle(e, p, LOCAL);
  assert.equal(
    (await h('addgateway', { name: 'uk-heavy', host: '192.0.2.30', prefix: '44', priority: '1', weight: '9' })).ok,
    true,
  );
  assert.equal(
    (await h('addgateway', { name: 'uk-light', host: '192.0.2.31', prefix: '44', priority: '1', weight: '1' })).ok,
    true,
  );
  assert.equal(
    (
      await h('addgateway', {
        name: 'uk-off',
        host: '192.0.2.32',
        prefix: '44',
        priority: '0',
        enabled: '0',
        inbound_ip: '198.51.100.77',
      })
    ).ok,
    true,
  );
  assert.equal(
    await t.srv.services.routing.gatewayForIp('198.51.100.77'),
    undefined,
    'a disabled gateway is not trusted',
  );
  let seq = 0;
  const draws = [0.5, 0.9]; // heavy draws u=0.5, light u=0.9: keys 0.077 vs 0.105 → heavy first
  const routing = new RoutingService(t.srv.services, { rng: () => draws[seq++ % 2]! });
  const bobU = await user('bob');
  const d = await routing.route({ caller: 'bob', called: '+44 20 7946 0000', fromIp: '', user: bobU });
  assert.equal(d.kind, 'gateways');
  if (d.kind === 'gateways')
    assert.deepEqual(
      d.candidates.map((c) => c.name),
      ['uk-heavy', 'uk-light', 'any'],
    );
  // over many real draws the heavy one is first about 90 % of the time
  const shared = t.srv.services.routing;
  let heavy = 0;
  for (let i = 0; i < 400; i++) {
    const x = await shared.route({ caller: 'bob', called: '442079460000', fromIp: '', user: bobU });
    if (x.kind === 'gateways' && x.candidates[0]!.name === 'uk-heavy') heavy++;
  }
  assert.ok(heavy > 320 && heavy < 390, `uk-heavy first ${heavy}/400`);
  // deleting is seen by every instance immediately (no stale cache)
  const del = await handle('delgateway', { ...admin, name: 'uk-heavy' });
  assert.equal(del.text, 'gateway uk-heavy deleted');
  const after1 = await routing.route({ caller: 'bob', called: '442079460000', fromIp: '', user: bobU });
  assert.ok(after1.kind === 'gateways' && after1.candidates.every((c) => c.name !== 'uk-heavy'));
  assert.equal((await handle('delgateway', { ...admin, name: 'uk-heavy' })).text, 'no gateway named "uk-heavy"');
  assert.equal((await handle('delgateway', { ...admin, name: 'uk-heavy' })).legacyStatus, 404);
  assert.match((await handle('delgateway', { ...rita, name: 'uk-light' })).text, /not allowed/);
  // by id too
  const light = (await shared.gateway('uk-light'))!;
  assert.equal((await handle('delgateway', { ...admin, name: String(light.id) })).text, 'gateway uk-light deleted');
});

test('no gateway for a rated number → 503', async () => {
  const h = (e: string, p: Record<string, string>) => handle(e, p, LOCAL);
  for (const n of ['de-a', 'de-mobile', 'any', 'uk-off'])
    assert.equal((await h('delgateway', { name: n })).ok, true, n);
  assert.equal((await h('gateways', {})).text, '0 gateway(s)');
  const r = await h('routingtest', { caller: 'bob', called: '+1 212 555 0100' });
  assert.equal(r.text, 'the call would be rejected: 503 no gateway serves 12125550100');
});

test('blockedprefixes: a blocked destination is refused 403 even with a rate and a gateway', async () => {
  assert.equal((await handle('addgateway', { ...admin, name: 'blk-de', host: '192.0.2.77', prefix: '49' })).ok, true);
  const ok1 = await handle('routingtest', { ...admin, caller: 'bob', called: '0049 170 1234567' });
  assert.equal(ok1.ok, true, ok1.text);
  t.srv.services.config.persist({ blockedprefixes: '4917, +44' });
  try {
    const r = await handle('routingtest', { ...admin, caller: 'bob', called: '0049 170 1234567' });
    assert.equal(r.ok, false);
    assert.match(
      r.text,
      /the call would be rejected: 403 destination 491701234567 is blocked \(blockedprefixes 4917\)/,
    );
    assert.equal(
      (await handle('routingtest', { ...admin, caller: 'bob', called: '0049 30 1234567' })).ok,
      true,
      'other German numbers still route',
    );
  } finally {
    t.srv.services.config.persist({ blockedprefixes: '' });
  }
  assert.throws(() => t.srv.services.config.persist({ blockedprefixes: '49x' }), /blockedprefixes/);
  t.srv.services.config.persist({ blockedprefixes: '' });
  assert.equal((await handle('delgateway', { ...admin, name: 'blk-de' })).ok, true);
});
