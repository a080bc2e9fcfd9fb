/**
 * RFC 3263 resolution of gateway host names against a tiny DNS server on loopback (test/helpers/dns.ts): NAPTR picks
 * the transport, SRV orders the targets (priority, then weight), A/AAAA give the addresses, the name itself without
 * SRV; answers cached for the addresses' TTL. Then a call through the B2BUA to a gateway named by SRV: the first
 * target answers 503 and the call fails over to the second target (sipp as both).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDns, type DnsServer } from '../helpers/dns.js';
import { SipResolver, orderSrv, ResolveError } from '../../src/sip/trunks/resolve.js';
import { skipWithout } from '../helpers/tools.js';
import { startCallEnv, uas, uac, uacCsv, setRates, waitFor, type CallEnv } from '../calls/helpers.js';

let dns: DnsServer;
let env: CallEnv;
let work: string;
let bob = 0;
let badPort = 0;
let goodPort = 0;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'voxswitch-dns-'));
  dns = await startDns([
    // NAPTR: TCP preferred (order 10) over UDP (order 20)
    {
      name: 'naptr.test',
      type: 'NAPTR',
      ttl: 60,
      data: {
        order: 20,
        preference: 10,
        flags: 'S',
        services: 'SIP+D2U',
        regexp: '',
        replacement: '_sip._udp.naptr.test',
      },
    },
    {
      name: 'naptr.test',
      type: 'NAPTR',
      ttl: 60,
      data: {
        order: 10,
        preference: 10,
        flags: 'S',
        services: 'SIP+D2T',
        regexp: '',
        replacement: '_sip._tcp.naptr.test',
      },
    },
    {
      name: '_sip._tcp.naptr.test',
      type: 'SRV',
      ttl: 60,
      data: { priority: 0, weight: 1, port: 5070, target: 'b.test' },
    },
    {
      name: '_sip._udp.naptr.test',
      type: 'SRV',
      ttl: 60,
      data: { priority: 0, weight: 1, port: 5080, target: 'a.test' },
    },
    // SRV only (no NAPTR): two priorities
    {
      name: '_sip._udp.srv.test',
      type: 'SRV',
      ttl: 60,
      data: { priority: 20, weight: 1, port: 5062, target: 'b.test' },
    },
    {
      name: '_sip._udp.srv.test',
      type: 'SRV',
      ttl: 60,
      data: { priority: 10, weight: 1, port: 5061, target: 'a.test' },
    },
    { name: 'srv.test', type: 'A', ttl: 60, data: '192.0.2.99' },
    { name: 'a.test', type: 'A', ttl: 60, data: '192.0.2.1' },
    { name: 'b.test', type: 'A', ttl: 2, data: '192.0.2.2' },
    { name: 'b.test', type: 'AAAA', ttl: 60, data: '2001:db8::2' },
    { name: 'plain.test', type: 'A', ttl: 60, data: '192.0.2.3' },
    { name: 'nothing.test', type: 'TXT', ttl: 60, data: 'no address here' },
  ]);
});
after(async () => {
  await env?.stop();
  await dns?.close();
  rmSync(work, { recursive: true, force: true });
});

test('NAPTR picks the transport (order), then its SRV, then A and AAAA of the target', async () => {
  const r = new SipResolver({ servers: [dns.address] });
  const hops = await r.resolve('naptr.test', 5060, 'udp', 'naptr');
  assert.deepEqual(hops, [
    { transport: 'tcp', host: '192.0.2.2', port: 5070, name: 'b.test' },
    { transport: 'tcp', host: '2001:db8::2', port: 5070, name: 'b.test' },
  ]);
});

test('SRV: targets by priority; a name without NAPTR falls to SRV per transport; SRV given, not the name A', async () => {
  const r = new SipResolver({ servers: [dns.address] });
  const srv = await r.resolve('srv.test', 5060, 'udp', 'srv');
  assert.deepEqual(
    srv.map((h) => `${h.host}:${h.port}`),
    ['192.0.2.1:5061', '192.0.2.2:5062', '2001:db8::2:5062'],
  );
  // no NAPTR for srv.test: the SRV of UDP is found (RFC 3263 §4.1)
  const viaNaptr = await r.resolve('srv.test', 5060, 'udp', 'naptr');
  assert.equal(viaNaptr[0]!.host, '192.0.2.1');
  assert.equal(viaNaptr[0]!.transport, 'udp');
});

test('no SRV: the name A record with the default port; a port given: A only; an IP as it is', async () => {
  const r = new SipResolver({ servers: [dns.address] });
  assert.deepEqual(await r.resolve('plain.test', 5060, 'tcp', 'srv'), [
    { transport: 'tcp', host: '192.0.2.3', port: 5060, name: 'plain.test' },
  ]);
  assert.deepEqual(await r.resolve('plain.test', 5099, 'udp', ''), [
    { transport: 'udp', host: '192.0.2.3', port: 5099, name: 'plain.test' },
  ]);
  assert.deepEqual(await r.resolve('198.51.100.7', 5060, 'udp', 'naptr'), [
    { transport: 'udp', host: '198.51.100.7', port: 5060, name: '198.51.100.7' },
  ]);
  await assert.rejects(r.resolve('nothing.test', 5060, 'udp', 'naptr'), ResolveError);
  await assert.rejects(r.resolve('unknown.test', 5060, 'udp', ''), /has no address in DNS/);
});

test('cache: a second resolution asks nothing until the smallest address TTL passed', async () => {
  let now = 1_000_000;
  const r = new SipResolver({ servers: [dns.address], now: () => now });
  await r.resolve('srv.test', 5060, 'udp', 'srv');
  const asked = dns.queries.length;
  await r.resolve('srv.test', 5060, 'udp', 'srv');
  assert.equal(dns.queries.length, asked, 'answered from the cache');
  now += 2_500; // b.test's A record lives 2 s
  await r.resolve('srv.test', 5060, 'udp', 'srv');
  assert.ok(dns.queries.length > asked, 'asked again after the TTL');
});

test('orderSrv: weight shares within a priority (RFC 2782)', () => {
  const recs = [
    { name: 'x', port: 1, priority: 1, weight: 90 },
    { name: 'y', port: 2, priority: 1, weight: 10 },
    { name: 'z', port: 3, priority: 0, weight: 0 },
  ];
  let seed = 7;
  const rng = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
  let xFirst = 0;
  for (let i = 0; i < 2000; i++) {
    const o = orderSrv(recs, rng);
    assert.equal(o[0]!.name, 'z', 'priority 0 first');
    if (o[1]!.name === 'x') xFirst++;
  }
  assert.ok(xFirst > 1650 && xFirst < 1950, `x first ${xFirst}/2000 (≈ 90 %)`);
});

test('B2BUA: a gateway named by SRV fails over from the first target (503) to the second', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  env = await startCallEnv();
  env.sip.resolver.setServers([dns.address]);
  const s = env.services;
  bob = (await s.users.create({ username: 'bob', password: 'bobpw' })).id;
  const cur = (await s.ledger.balance(bob))!.currency;
  await setRates(s, cur, [{ prefix: '44', price: 600_000 }]);
  await s.ledger.post({ userId: bob, amount: 50_000_000, reason: 'test' });
  const bad = await uas(work, 'uas_503.xml');
  const good = await uas(work, 'uas_answer.xml');
  [badPort, goodPort] = [bad.port, good.port];
  dns.records.push(
    {
      name: '_sip._udp.gw.test',
      type: 'SRV',
      ttl: 60,
      data: { priority: 1, weight: 1, port: badPort, target: 'lo.test' },
    },
    {
      name: '_sip._udp.gw.test',
      type: 'SRV',
      ttl: 60,
      data: { priority: 2, weight: 1, port: goodPort, target: 'lo.test' },
    },
    { name: 'lo.test', type: 'A', ttl: 60, data: '127.0.0.1' },
  );
  env.router.gateways = [
    {
      id: 1,
      name: 'gwSrv',
      host: 'gw.test',
      port: 5060,
      transport: 'udp',
      username: '',
      password: '',
      number: '',
      dns: 'srv',
    },
  ];
  const [a, b1, b2] = await Promise.all([
    uac(env, work, 'uac_auth.xml', uacCsv(work, 'srv.csv', [['bob', 'bobpw', '4411112222']]), 1, ['-d', '500']),
    bad.done,
    good.done,
  ]);
  assert.equal(a.code, 0, 'caller: ' + a.out.slice(-1500));
  assert.equal(b1.code, 0, 'first SRV target (503): ' + b1.out.slice(-1500));
  assert.equal(b2.code, 0, 'second SRV target (200): ' + b2.out.slice(-1500));
  const cdr = await waitFor(
    () => s.storage.db.selectFrom('tb_cdrs').selectAll().where('userid', '=', bob).executeTakeFirst(),
    (r) => r !== undefined,
  );
  assert.equal(cdr?.route, 'gw:gwSrv');
  assert.ok(Number(cdr?.duration) >= 0);
});
