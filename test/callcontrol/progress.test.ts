/** Call progress of callback/p2p: the outcome text → SIP status and final state, and the tracker's steps. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failureOf, ProgressTracker, statusOf, type CallProgress } from '../../src/sip/callcontrol/progress.js';
import { openState } from '../../src/state/index.js';
import type { BridgedCall, Leg } from '../../src/sip/callcontrol/types.js';

test('statusOf / failureOf read the leg outcome', () => {
  assert.equal(statusOf('gw1: 486 Busy Here'), 486);
  assert.equal(failureOf('gw1: 486 Busy Here'), 'busy');
  assert.equal(failureOf('gw1: 600 Busy Everywhere'), 'busy');
  assert.equal(statusOf('gw1: no answer within 30 s'), 480);
  assert.equal(failureOf('gw1: no answer within 30 s'), 'no-answer');
  assert.equal(statusOf('gw1: no answer (timeout)'), 408);
  assert.equal(failureOf('gw1: no answer (timeout)'), 'no-answer');
  assert.equal(statusOf('gw1: unreachable (transport error)'), 503);
  assert.equal(failureOf('gw2: 404 Not Found'), 'failed');
  assert.equal(failureOf('gw2: 403'), 'failed');
  assert.equal(statusOf(undefined), 0);
});

function leg(name: 'a' | 'b', callee: string): Leg {
  return { name, plan: { callee }, state: 'idle' } as unknown as Leg;
}

test('the tracker stores each step once, in order, and a final state ends it', async () => {
  const state = await openState({ nodeId: 't' });
  let now = 1000;
  const seen: CallProgress[] = [];
  const tr = new ProgressTracker(
    state.ttl('callprogress'),
    (e) => assert.fail(String(e)),
    () => now,
  );
  tr.onChange = (p) => seen.push(p);
  const call = {
    callid: 'c1',
    kind: 'p2p',
    userId: 7,
    username: 'u',
    startAt: 900,
    a: leg('a', '1'),
    b: leg('b', '2'),
  };
  const c = call as unknown as BridgedCall;
  tr.step(c, 'initiated');
  tr.step(c, 'ringing', 'a');
  tr.step(c, 'ringing', 'a'); // a second 180 is not a step
  now = 2000;
  call.a.connectAt = 2000;
  tr.step(c, 'a-answered', 'a');
  call.b.outcome = 'gw: 486 Busy Here';
  tr.step(c, 'busy', 'b', call.b.outcome);
  tr.step(c, 'completed'); // nothing after a final state
  assert.deepEqual(
    seen.map((p) => p.state),
    ['initiated', 'ringing', 'a-answered', 'busy'],
  );
  const p = (await tr.get('c1'))!;
  assert.equal(p.state, 'busy');
  assert.equal(p.sipStatus, 486);
  assert.equal(p.a.status, 200);
  assert.equal(p.endedAt, 2000);
  assert.equal(p.history.length, 4);
  assert.equal(await tr.get('nope'), undefined);
  await state.close();
});
