/**
 * The write path of the shared location over Redis: a REGISTER of a user this node's copy knows is one
 * compare-and-set without a read; another node takes the announced bindings without reading them and ignores an
 * announcement older than what it holds; a copy that is behind is caught by the compare-and-set (the CSeq rule
 * holds on what Redis stores). The bus skips a process's own messages for handlers that want only the others'.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openState, type HashStore, type State } from '../../../src/state/index.js';
import { LocationStore, type Binding, type UpdateInput } from '../../../src/sip/services/location.js';
import { SharedLocation } from '../../../src/sip/services/sharedlocation.js';
import { REDIS_URL, redisMissing, testPrefix, dropPrefix, until } from '../../state/redis.js';

const missing = await redisMissing();
const quiet = { warn: () => undefined };

function contact(user: string, port: number): UpdateInput {
  return {
    contact: `sip:${user}@192.0.2.1:${port}`,
    expires: 300,
    transport: 'udp',
    srcIp: '192.0.2.1',
    srcPort: port,
    userAgent: 'test',
    q: 1,
  };
}

/** The store with its reads and writes counted. */
function counted(h: HashStore): { hash: HashStore; reads: () => number; puts: () => number } {
  let reads = 0;
  let puts = 0;
  const hash: HashStore = {
    read: (k) => (reads++, h.read(k)),
    write: (k, f, v) => h.write(k, f, v),
    put: (k, f, v) => (puts++, h.put(k, f, v)),
    keys: () => h.keys(),
  };
  return { hash, reads: () => reads, puts: () => puts };
}

describe('shared location stamps, two nodes', { skip: missing ?? false, timeout: 30_000 }, () => {
  const prefix = testPrefix();
  let sa: State;
  let sb: State;
  const shared: SharedLocation[] = [];
  const node = async (s: State) => {
    const store = new LocationStore(16);
    const c = counted(s.hash('location'));
    const sl = new SharedLocation(store, c.hash, s.bus, s.nodeId, quiet, 16);
    await sl.start();
    shared.push(sl);
    return { store, ...c, prune: () => sl.prune(), stampCountOf: () => sl.stampCount() };
  };
  before(async () => {
    sa = await openState({ redisUrl: REDIS_URL, prefix, nodeId: 'a' });
    sb = await openState({ redisUrl: REDIS_URL, prefix, nodeId: 'b' });
  });
  after(async () => {
    for (const s of shared) s.stop();
    await sa?.close();
    await sb?.close();
    await dropPrefix(prefix);
  });

  test('refreshes write without reading; the other node applies them without reading', async () => {
    const a = await node(sa);
    const b = await node(sb);
    assert.equal((await a.store.register('u1', 'c1', 1, [contact('u1', 5001)])).ok, true);
    await until(() => b.store.all('u1').length === 1, 3000, 'B has the binding');
    const [ra, rb] = [a.reads(), b.reads()];
    for (let cseq = 2; cseq <= 6; cseq++)
      assert.equal((await a.store.register('u1', 'c1', cseq, [contact('u1', 5001)])).ok, true);
    await until(() => b.store.all('u1')[0]?.cseq === 6, 3000, 'B has the last refresh');
    assert.equal(a.reads(), ra, 'A planned every refresh on its copy');
    assert.equal(b.reads(), rb, 'B took the announcements without reading');
    // B registers the same user: its copy holds A's last stamp, so one compare-and-set, no read
    assert.equal((await b.store.register('u1', 'c1', 7, [contact('u1', 5001)])).ok, true);
    assert.equal(b.reads(), rb);
    assert.equal((await a.store.register('u1', 'c1', 7, [contact('u1', 5001)])).ok, false, 'CSeq 7 taken');
    await until(() => a.store.all('u1')[0]?.cseq === 7, 3000, 'A has B’s write');
  });

  test('a copy that is behind is caught by the compare-and-set', async () => {
    const a = await node(sa);
    const b = await node(sb);
    assert.equal((await a.store.register('u2', 'c1', 5, [contact('u2', 5002)])).ok, true);
    await until(() => b.store.all('u2').length === 1, 3000, 'B has the binding');
    // a write B is not told about: CSeq 9 in Redis, B's copy still at 5
    const h = sa.hash('location');
    const snap = await h.read('u2');
    const [[f, e]] = [...snap.fields];
    const bound = { ...(JSON.parse(e.value) as Binding), cseq: 9 };
    assert.notEqual(await h.put('u2', new Map([[f, { ...e, value: JSON.stringify(bound) }]]), snap.version), 0);
    const reads = b.reads();
    const r = await b.store.register('u2', 'c1', 7, [contact('u2', 5002)]);
    assert.deepEqual(r.ok ? 'ok' : r.status, 500, 'CSeq 7 after 9 refused on what Redis holds');
    assert.ok(b.reads() > reads, 'B read after its compare-and-set was refused');
    assert.equal(b.store.all('u2')[0]?.cseq, 9, 'B’s copy caught up');
    assert.equal((await b.store.register('u2', 'c1', 10, [contact('u2', 5002)])).ok, true);
    // Contact: * planned on a copy that is behind is refused the same way
    const snap2 = await h.read('u2');
    const [[f2, e2]] = [...snap2.fields];
    const b2 = { ...(JSON.parse(e2.value) as Binding), cseq: 20 };
    assert.notEqual(await h.put('u2', new Map([[f2, { ...e2, value: JSON.stringify(b2) }]]), snap2.version), 0);
    const star = await b.store.unregisterAll('u2', 'c1', 15);
    assert.deepEqual(star.ok ? 'ok' : star.status, 500);
    assert.equal((await b.store.unregisterAll('u2', 'c1', 21)).ok, true);
    await until(() => a.store.all('u2').length === 0, 3000, 'A saw the removal');
  });

  test('an announcement older than the copy is ignored', async () => {
    const b = await node(sb);
    const a = await node(sa);
    assert.equal((await a.store.register('u3', 'c1', 1, [contact('u3', 5003)])).ok, true);
    await until(() => b.store.all('u3').length === 1, 3000, 'B has the binding');
    // from A's connection, in order: a stale announcement (stamp 1: emptied), then a fresh one for another user
    await sa.bus.publish('location', { u: 'u3', v: 1, b: [] });
    const fresh = { ...a.store.all('u3')[0]!, contact: 'sip:u4@192.0.2.1:5004' };
    await sa.bus.publish('location', { u: 'u4', v: Number.MAX_SAFE_INTEGER, b: [fresh] });
    await until(() => b.store.all('u4').length === 1, 3000, 'B took the fresh one');
    assert.equal(b.store.all('u3').length, 1, 'the stale one changed nothing');
  });

  test('the stamps of users without bindings are dropped after a whole prune period; a next write still works', async () => {
    const a = await node(sa);
    const b = await node(sb);
    assert.equal((await a.store.register('u5', 'c1', 1, [contact('u5', 5005)])).ok, true);
    assert.equal((await a.store.register('u6', 'c1', 1, [contact('u6', 5006)])).ok, true);
    await until(() => b.store.all('u6').length === 1, 3000, 'B has the bindings');
    assert.equal((await a.store.unregisterAll('u5', 'c1', 2)).ok, true);
    await until(() => b.store.all('u5').length === 0, 3000, 'B saw the removal');
    const before = [a.stampCountOf(), b.stampCountOf()];
    a.prune();
    b.prune();
    assert.deepEqual([a.stampCountOf(), b.stampCountOf()], before, 'an emptied user keeps its stamp one period');
    a.prune();
    b.prune();
    assert.deepEqual([a.stampCountOf(), b.stampCountOf()], [before[0]! - 1, before[1]! - 1], 'then it goes');
    assert.equal(a.store.all('u6').length, 1, 'a user with bindings keeps them (and its stamp)');
    // without its stamp the next write of u5 reads the user first, and the CSeq rule still holds on what Redis has
    const reads = a.reads();
    assert.equal((await a.store.register('u5', 'c1', 3, [contact('u5', 5005)])).ok, true);
    assert.ok(a.reads() > reads, 'read before writing');
    await until(() => b.store.all('u5').length === 1, 3000, 'B took the new binding (no stamp held there either)');
  });

  test('othersOnly: a process does not receive its own messages, the others do', async () => {
    const own: unknown[] = [];
    const all: boolean[] = [];
    const other: unknown[] = [];
    const offA = sa.bus.subscribe('t', (d) => own.push(d), { othersOnly: true });
    const offA2 = sa.bus.subscribe('t', (_d, from) => all.push(from.self));
    const offB = sb.bus.subscribe('t', (d) => other.push(d), { othersOnly: true });
    await sa.bus.ready();
    await sb.bus.ready();
    await sa.bus.publish('t', { x: 1 });
    await until(() => other.length === 1 && all.length === 1, 3000, 'delivered');
    assert.deepEqual(all, [true], 'a handler that wants its own messages gets them');
    assert.deepEqual(own, [], 'the othersOnly handler does not');
    offA2();
    await sa.bus.publish('t', { x: 2 });
    await sb.bus.publish('t', { x: 3 });
    await until(() => other.length === 2 && own.length === 1, 3000, 'delivered');
    assert.deepEqual(own, [{ x: 3 }]);
    offA();
    offB();
  });
});
