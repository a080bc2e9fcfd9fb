/**
 * The location service shared by two nodes on one Redis (SharedLocation over state.hash('location') and the bus):
 * each node's copy sees every binding; another node's stream bindings are seen but not sent to; the CSeq rule and
 * the most-bindings limit hold across nodes; a closed connection and a restarted node drop their stream bindings.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openState, type State } from '../../../src/state/index.js';
import { LocationStore, type UpdateInput } from '../../../src/sip/services/location.js';
import { SharedLocation } from '../../../src/sip/services/sharedlocation.js';
import { REDIS_URL, redisMissing, testPrefix, dropPrefix, until } from '../../state/redis.js';

const missing = await redisMissing();
const quiet = { warn: () => undefined };

function contact(user: string, port: number, transport: UpdateInput['transport'] = 'udp', expires = 300): UpdateInput {
  return {
    contact: `sip:${user}@192.0.2.1:${port}`,
    expires,
    transport,
    srcIp: '192.0.2.1',
    srcPort: port,
    connId: transport === 'udp' ? undefined : `conn-${port}`,
    userAgent: 'test',
    q: 1,
  };
}

describe('shared location, two nodes', { skip: missing ?? false, timeout: 30_000 }, () => {
  const prefix = testPrefix();
  let sa: State;
  let sb: State;
  const nodes: Array<{ store: LocationStore; shared: SharedLocation }> = [];
  const node = async (s: State, max = 16) => {
    const store = new LocationStore(max);
    const shared = new SharedLocation(store, s.hash('location'), s.bus, s.nodeId, quiet, max);
    await shared.start();
    nodes.push({ store, shared });
    return store;
  };
  before(async () => {
    sa = await openState({ redisUrl: REDIS_URL, prefix, nodeId: 'a' });
    sb = await openState({ redisUrl: REDIS_URL, prefix, nodeId: 'b' });
  });
  after(async () => {
    for (const n of nodes) n.shared.stop();
    await sa?.close();
    await sb?.close();
    await dropPrefix(prefix);
  });

  test('every node sees every binding; another node’s TCP binding is seen, not sent to', async () => {
    const a = await node(sa);
    const b = await node(sb);
    const changes: string[] = [];
    b.onChange = (c) => changes.push(`${c.username}:${c.online}`);
    assert.equal((await a.register('u1', 'c1', 1, [contact('u1', 5001)])).ok, true);
    assert.equal((await a.register('u1', 'c2', 1, [contact('u1', 5002, 'tcp')])).ok, true);
    await until(() => b.all('u1').length === 2, 3000, 'both bindings on B');
    assert.equal(b.isOnline('u1'), true);
    assert.deepEqual(
      b.lookup('u1').map((x) => x.srcPort),
      [5001],
      'B sends to the UDP binding only',
    );
    assert.deepEqual(
      a
        .lookup('u1')
        .map((x) => x.srcPort)
        .sort(),
      [5001, 5002],
      'A owns both',
    );
    assert.ok(changes.includes('u1:true'), 'B’s watchers were told');
    assert.deepEqual(
      [...b.entries()].map(([u]) => u),
      ['u1'],
    );

    // the CSeq rule across nodes: B refuses a REGISTER older than the one A stored
    const old = await b.register('u1', 'c1', 1, [contact('u1', 5001)]);
    assert.equal(old.ok, false);
    assert.equal(!old.ok && old.status, 500);

    // A's TCP connection closes: gone everywhere
    a.connectionClosed('conn-5002');
    await until(() => b.all('u1').length === 1, 3000, 'TCP binding gone on B');
    // a connection id is the owning node's: the same id closing on B leaves A's binding alone
    assert.equal((await a.register('u1', 'c3', 1, [contact('u1', 5003, 'tcp')])).ok, true);
    await until(() => b.all('u1').length === 2, 3000, 'the new TCP binding on B');
    b.connectionClosed('conn-5003');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(a.all('u1').length, 2);
    assert.equal(b.all('u1').length, 2);
    assert.equal((await b.unregisterAll('u1', 'c9', 1)).ok, true);
    await until(() => !a.isOnline('u1'), 3000, 'u1 offline on A');
  });

  test('the most-bindings limit holds when two nodes register one user at once', async () => {
    const a = await node(sa, 3);
    const b = await node(sb, 3);
    const results = await Promise.all(
      Array.from({ length: 6 }, (_v, i) => (i % 2 ? a : b).register('u2', `k${i}`, 1, [contact('u2', 6000 + i)])),
    );
    assert.equal(results.filter((r) => r.ok).length, 3);
    assert.ok(results.filter((r) => !r.ok).every((r) => !r.ok && r.status === 403));
    await until(() => a.all('u2').length === 3 && b.all('u2').length === 3, 3000, 'three bindings on both');
  });

  test('a node that starts again drops the stream bindings its last run left, keeps its UDP ones', async () => {
    const a = await node(sa);
    assert.equal((await a.register('u3', 'x1', 1, [contact('u3', 7001, 'tls')])).ok, true);
    assert.equal((await a.register('u3', 'x2', 1, [contact('u3', 7002)])).ok, true);
    const again = await node(sa); // the same node id, a new process
    assert.deepEqual(
      again.all('u3').map((x) => x.srcPort),
      [7002],
    );
    const b = await node(sb);
    assert.deepEqual(
      b.all('u3').map((x) => x.srcPort),
      [7002],
    );
  });
});
