/**
 * PinGuard: wrong access-number PINs counted per caller number and in all, in-process and on Redis shared by two
 * "nodes" (two state instances), so a guesser cannot spread its tries over the nodes of the switch.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { PinGuard } from '../../src/sip/ivr/pinguard.js';
import { openState, type State } from '../../src/state/index.js';
import { REDIS_URL, redisMissing, testPrefix, dropPrefix } from '../state/redis.js';

const log = pino({ level: 'silent' });
const opts = (max: number, global: number) => () => ({
  ivrpinfailmax: max,
  ivrpinfailglobal: global,
  ivrpinfailwindow: 3600,
});

test('a caller number is blocked after ivrpinfailmax wrong PINs; other numbers are not', async () => {
  const s = await openState({});
  try {
    const g = new PinGuard(s.limits, opts(3, 0), log);
    assert.equal(await g.failed('491'), undefined);
    assert.equal(await g.failed('491'), undefined);
    assert.equal(await g.blocked('491'), undefined);
    assert.match((await g.failed('491'))!, /too many wrong PINs from this number/);
    assert.match((await g.blocked('491'))!, /too many wrong PINs/);
    assert.equal(await g.blocked('492'), undefined);
  } finally {
    await s.close();
  }
});

test('past ivrpinfailglobal PIN entry is suspended for every caller; 0 turns a limit off', async () => {
  const s = await openState({});
  try {
    const g = new PinGuard(s.limits, opts(100, 3), log);
    for (const n of ['1', '2']) assert.equal(await g.failed(n), undefined);
    assert.match((await g.failed('3'))!, /PIN entry is suspended/);
    assert.match((await g.blocked('fresh'))!, /suspended/);
    const off = new PinGuard(s.limits, opts(0, 0), log);
    for (let i = 0; i < 20; i++) assert.equal(await off.failed('9'), undefined);
  } finally {
    await s.close();
  }
});

const missing = await redisMissing();
const prefix = testPrefix();
after(() => dropPrefix(prefix));

test('on Redis the wrong PINs of two nodes add up', { skip: missing ?? false }, async () => {
  let a: State | undefined;
  let b: State | undefined;
  try {
    a = await openState({ redisUrl: REDIS_URL, prefix, nodeId: 'a' });
    b = await openState({ redisUrl: REDIS_URL, prefix, nodeId: 'b' });
    const ga = new PinGuard(a.limits, opts(4, 0), log);
    const gb = new PinGuard(b.limits, opts(4, 0), log);
    await ga.failed('4930');
    await gb.failed('4930');
    await ga.failed('4930');
    assert.equal(await gb.blocked('4930'), undefined);
    assert.match((await gb.failed('4930'))!, /too many wrong PINs/);
    assert.match((await ga.blocked('4930'))!, /too many wrong PINs/);
  } finally {
    await a?.close();
    await b?.close();
  }
});
