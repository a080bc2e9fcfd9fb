/** Call states shared over a bus: another node's state is seen, announced again on each heartbeat, dropped when a
 * node stops announcing (it died); in one process nothing is published. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallStates } from '../../../src/sip/services/status.js';
import type { Bus, BusHandler } from '../../../src/state/index.js';

/** Two nodes' buses joined: what one publishes reaches the other's handlers (and its own, as self). */
function joined(): [Bus, Bus] {
  const handlers: Array<{ node: string; ch: string; h: BusHandler }> = [];
  const make = (node: string): Bus => ({
    nodeId: node,
    async publish(ch, data) {
      for (const x of handlers) if (x.ch === ch) x.h(JSON.parse(JSON.stringify(data)), { node, self: x.node === node });
    },
    subscribe(ch, h) {
      const e = { node, ch, h };
      handlers.push(e);
      return () => void handlers.splice(handlers.indexOf(e), 1);
    },
    ready: async () => undefined,
    onRejoin: () => undefined,
    close: async () => undefined,
  });
  return [make('a'), make('b')];
}

test('call states across two nodes; a node that stops announcing loses its states', async () => {
  let now = 1_000_000;
  const [busA, busB] = joined();
  const a = new CallStates(() => now);
  const b = new CallStates(() => now);
  const told: string[] = [];
  b.onRemoteChange = (u) => told.push(u);
  a.share(busA, 1000);
  b.share(busB, 1000);
  a.set('alice', 3);
  assert.equal(b.get('alice'), 3);
  a.set('alice', 4);
  assert.equal(b.get('alice'), 4);
  b.set('alice', 3);
  assert.equal(b.get('alice'), 3, 'a call of this node wins');
  b.set('alice', null);
  assert.equal(b.get('alice'), 4);
  assert.ok(told.includes('alice'));
  a.stop(); // node A dies: no more announcements
  now += 3001;
  assert.equal(b.get('alice'), undefined, 'older than three heartbeats');
  b.stop();
  const solo = new CallStates();
  solo.set('bob', 4);
  assert.equal(solo.get('bob'), 4);
  solo.set('bob', null);
  assert.equal(solo.get('bob'), undefined);
});
