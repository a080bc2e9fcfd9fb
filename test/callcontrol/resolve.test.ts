/**
 * Callback/p2p legs to a gateway named by DNS: LegPlanner resolves the host with the B2BUA's RFC 3263 resolver
 * (src/sip/trunks/resolve.ts) against a real DNS server of the test: one target per SRV target in priority order
 * (the leg fails over across them as across gateways), the name kept in the Request-URI; a gateway whose name does
 * not resolve is skipped; none resolving is refused 503.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDns, type DnsServer } from '../helpers/dns.js';
import { SipResolver } from '../../src/sip/trunks/resolve.js';
import { LegPlanner } from '../../src/sip/callcontrol/plan.js';
import { CallControlError } from '../../src/sip/callcontrol/types.js';
import type { GatewayCandidate } from '../../src/domain/routing/types.js';

let dns: DnsServer;
before(async () => {
  dns = await startDns([
    { name: '_sip._udp.gw.test', type: 'SRV', ttl: 60, data: { priority: 2, weight: 1, port: 5072, target: 'b.test' } },
    { name: '_sip._udp.gw.test', type: 'SRV', ttl: 60, data: { priority: 1, weight: 1, port: 5071, target: 'a.test' } },
    { name: 'a.test', type: 'A', ttl: 60, data: '127.0.0.2' },
    { name: 'b.test', type: 'A', ttl: 60, data: '127.0.0.3' },
  ]);
});
after(() => dns?.close());

const gw = (name: string, host: string, o: Partial<GatewayCandidate> = {}): GatewayCandidate => ({
  id: 1,
  name,
  host,
  port: 5060,
  transport: 'udp',
  username: '',
  password: '',
  number: '4411112222',
  ...o,
});

function planner(candidates: GatewayCandidate[]) {
  const warned: unknown[] = [];
  const services = { log: { warn: (o: unknown) => warned.push(o) }, config: { options: {} } };
  const sip = {
    stack: { localAddress: () => ({ host: '127.0.0.1', port: 5060 }) },
    location: { lookup: () => [] },
    resolver: new SipResolver({ servers: [dns.address] }),
  };
  const routing = { route: async () => ({ kind: 'gateways', number: '4411112222', candidates, rate: undefined }) };
  const live = { reservedFor: () => 0 };
  return { p: new LegPlanner(services as never, sip as never, routing as never, live as never), warned };
}

test('SRV name: one target per SRV target by priority, the name in the Request-URI; an unknown name skipped', async () => {
  const { p, warned } = planner([
    gw('gwMissing', 'missing.test', { dns: 'srv' }),
    gw('gwSrv', 'gw.test', { dns: 'srv' }),
    gw('gwIp', '127.0.0.9', { port: 5090 }),
  ]);
  const plan = await p.planLeg({ id: 1, username: 'bob' } as never, '4411112222', 'bob');
  assert.deepEqual(
    plan.targets.map((t) => [t.name, t.target.host, t.target.port, t.ruri]),
    [
      ['gwSrv', '127.0.0.2', 5071, 'sip:4411112222@gw.test'],
      ['gwSrv', '127.0.0.3', 5072, 'sip:4411112222@gw.test'],
      ['gwIp', '127.0.0.9', 5090, 'sip:4411112222@127.0.0.9:5090'],
    ],
  );
  assert.equal(warned.length, 1, 'the unresolved gateway is logged');
});

test('no gateway host resolves: refused 503 with the reason', async () => {
  const { p } = planner([gw('gwMissing', 'missing.test', { dns: 'srv' })]);
  await assert.rejects(
    p.planLeg({ id: 1, username: 'bob' } as never, '4411112222', 'bob'),
    (e: unknown) => e instanceof CallControlError && /could be resolved \(503\)/.test(e.message),
  );
});
