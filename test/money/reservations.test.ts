/**
 * Credit reservations in the ledger model (tb_reservations): a live call's reservation cannot be spent by
 * transfercredit, a negative addcredit or SQL, and its CDR is charged in full; on PostgreSQL two nodes (two
 * LiveCalls over their own connection pools) reserving and transferring concurrently never spend more than the
 * balance, and a dead node's calls are billed once by a survivor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { caller, LOCAL } from '../users/helpers.js';
import { usePgTestServer } from '../helpers/pg.js';
import { LiveCalls } from '../../src/domain/calls/livecalls.js';
import { openStorage } from '../../src/storage/db.js';
import { Ledger } from '../../src/domain/billing/ledger.js';
import { CdrService } from '../../src/domain/billing/cdrs.js';
import type { DomainServices } from '../../src/domain/deps.js';
import type { Services } from '../../src/services.js';
import type { Rate } from '../../src/domain/rating/rate.js';
import { setRates } from '../calls/helpers.js';
import { openState } from '../../src/state/index.js';
import { REDIS_URL, redisMissing, testPrefix, dropPrefix } from '../state/redis.js';

const UNIT = 1_000_000;
const pg = usePgTestServer('reservations', { usesip: 'false' });

/** An account (under `parentid`, to which it may send credit). */
async function account(s: DomainServices, name: string, credit: number, parentid = 0): Promise<number> {
  const id = (await s.users.create({ username: name, password: `${name}pw1`, parentid })).id;
  if (credit) await s.ledger.post({ userId: id, amount: credit, reason: 'test' });
  return id;
}

/** A rate of 0.10 per minute, billed per second, on the 4900 prefix. */
async function rateFor(s: Services, uid: number): Promise<Rate> {
  const cur = (await s.ledger.balance(uid))!.currency;
  await setRates(s, cur, [{ prefix: '4900', price: 100_000 }]);
  return (await s.rating.quote({ id: uid, country: '' }, '4900111')).rate;
}

async function leakScenario(t: TestServer, p: string): Promise<void> {
  const s = t.srv.services;
  const friend = await account(s, `${p}friend`, 0);
  const payer = await account(s, `${p}payer`, 5 * UNIT, friend);
  const rate = await rateFor(s, payer);
  let now = 1_700_000_000_000;
  const live = new LiveCalls(s, { now: () => now });
  const r = await live.reserve({ callid: `${p}c1`, userId: payer, caller: 'x', callee: '4900111', rate });
  assert.ok(r.ok);
  assert.equal(r.reserved, 5 * UNIT, 'the call reserves the whole balance (50 min at 0.10/min)');
  assert.equal(await s.ledger.reserved(payer), 5 * UNIT);
  await live.connected(`${p}c1`, '', { onMaxDuration: () => undefined });

  const user = (await s.users.byId(payer))!;
  await assert.rejects(s.money.transfer(user, `${p}friend`, 5 * UNIT), (e: Error) => {
    assert.equal(
      e.message,
      'insufficient credit: you have 5.00 USD, of which 5.00 is reserved by live calls, the transfer needs 5.00',
    );
    return true;
  });
  await assert.rejects(s.money.transfer(user, `${p}friend`, 1), /of which 5\.00 is reserved by live calls/);
  await assert.rejects(s.money.addCredit(payer, -UNIT, payer), (e: Error) => {
    assert.equal(
      e.message,
      'credit: -1.00 would take the balance below the credit reserved by live calls (balance 5.00 USD, of which ' +
        '5.00 is reserved by live calls)',
    );
    return true;
  });
  // the db command's SQL meets the database's own check
  const db = s.storage.db;
  await assert.rejects(
    sql`INSERT INTO tb_ledger (userid, amount, balance_after, currency, reason, ref, actor, created_at)
        VALUES (${payer}, ${-UNIT}, ${4 * UNIT}, 'USD', 'sql', '', 0, 0)`.execute(db),
    /debit would spend credit reserved by live calls/,
  );
  await assert.rejects(
    sql`UPDATE tb_reservations SET amount = 1 WHERE userid = ${payer}`.execute(db),
    /never changed, only released/,
  );
  await assert.rejects(sql`UPDATE tb_users SET credit = 0 WHERE id = ${payer}`.execute(db), /ledger entry/);
  await assert.rejects(
    sql`INSERT INTO tb_reservations (userid, callid, leg, amount, node, created_at, expires_at)
        VALUES (${payer}, 'sql-hold', '', 1, '', 0, 0)`.execute(db),
    /reservation exceeds the available credit/,
  );
  // the db command cannot release a reservation either
  const { call } = caller(t);
  for (const txt of [`DELETE FROM tb_reservations WHERE userid = ${payer}`, 'UPDATE tb_reservations SET amount = 0']) {
    const r = await call('db', { txt }, LOCAL);
    assert.equal(r.ok, false, txt);
    assert.match(r.text, /tb_reservations is written only by the ledger|permission denied for table tb_reservations/);
  }
  assert.equal(await s.ledger.reserved(payer), 5 * UNIT);
  assert.equal((await s.ledger.balance(payer))!.credit, 5 * UNIT);

  // the call runs its full 50 minutes and is charged all of it
  now += 3000 * 1000;
  const rec = await live.finish(`${p}c1`, '', { reason: 'maxduration reached' });
  assert.equal(rec!.charged, 5 * UNIT);
  assert.equal(rec!.cdr.cost, 5 * UNIT);
  assert.equal(rec!.cdr.reason, 'maxduration reached');
  assert.equal((await s.ledger.balance(payer))!.credit, 0);
  assert.equal(await s.ledger.reserved(payer), 0, 'the charge released the reservation');

  // a smaller call: what is not reserved can be moved, the call is still charged in full
  await s.ledger.post({ userId: payer, amount: 5 * UNIT, reason: 'test' });
  const r2 = await live.reserve({ callid: `${p}c2`, userId: payer, caller: 'x', callee: '4900111', rate });
  assert.ok(r2.ok);
  await assert.rejects(s.money.transfer(user, `${p}friend`, UNIT), /reserved/);
  await live.release(`${p}c2`);
  await s.money.transfer(user, `${p}friend`, 3 * UNIT);
  const r3 = await live.reserve({ callid: `${p}c3`, userId: payer, caller: 'x', callee: '4900111', rate });
  assert.ok(r3.ok && r3.reserved === 2 * UNIT && r3.maxduration === 1200);
  await live.connected(`${p}c3`);
  await assert.rejects(s.money.transfer(user, `${p}friend`, 1), /of which 2\.00 is reserved/);
  now += 600 * 1000;
  const rec3 = await live.finish(`${p}c3`);
  assert.equal(rec3!.charged, UNIT);
  await s.money.transfer(user, `${p}friend`, UNIT);
  assert.equal((await s.ledger.balance(payer))!.credit, 0);
  assert.deepEqual(await s.ledger.audit(), []);
  assert.equal((await db.selectFrom('tb_reservations').selectAll().execute()).length, 0);
  live.stop();
}

test('SQLite: a live call holds its credit against transfers, addcredit and SQL; its CDR is charged in full', async () => {
  const t = await startTestServer({ usesip: 'false' });
  try {
    await leakScenario(t, 'sq');
  } finally {
    await t.stop();
  }
});

test('PostgreSQL: a live call holds its credit against transfers, addcredit and SQL', async (c) => {
  if (pg.skip) return c.skip(pg.skip);
  await leakScenario(pg.t!, 'pg');
});

/** A second node: its own connection pool, ledger and CDR service on the same database. */
async function secondNode(s: Services, url: string) {
  const storage = await openStorage(url, '');
  const ledger = new Ledger(storage.db);
  const cdrs = new CdrService(storage.db, ledger, s.rating);
  const services: DomainServices = { ...s, storage, ledger, cdrs };
  return { services, close: () => storage.close() };
}

test('PostgreSQL, two nodes: concurrent calls and transfers of one account never spend more than its balance', async (c) => {
  if (pg.skip) return c.skip(pg.skip);
  const s = pg.t!.srv.services;
  const b = await secondNode(s, s.storage.location);
  try {
    const friend = await account(s, 'twofriend', 0);
    const payer = await account(s, 'twopayer', 10 * UNIT, friend);
    const user = (await s.users.byId(payer))!;
    const rate = await rateFor(s, payer);
    // calls of at most 2 minutes at 1.00 a minute hold 2.00 each: 30 attempts on two nodes and ten transfers of
    // 1.00 race for the 10.00
    const nodeA = new LiveCalls(s, { node: 'A', maxCallSeconds: 120 });
    const nodeB = new LiveCalls(b.services, { node: 'B', maxCallSeconds: 120 });
    const small = { ...rate, price: 1_000_000 }; // 1.00 per minute
    const attempts: Array<ReturnType<LiveCalls['reserve']>> = [];
    const transfers: Array<Promise<number>> = [];
    for (let i = 0; i < 30; i++) {
      if (i % 3 === 0)
        transfers.push(
          s.money.transfer(user, 'twofriend', UNIT).then(
            () => UNIT,
            (e: Error) => {
              assert.match(e.message, /^insufficient credit/);
              return 0;
            },
          ),
        );
      const node = i % 2 ? nodeB : nodeA;
      const call = { callid: `two-${i}`, userId: payer, caller: 'x', callee: '4900111', rate: small };
      // staggered by a few ms so that reservations and transfers interleave
      attempts.push(new Promise((r) => setTimeout(r, 4 * i)).then(() => node.reserve(call)));
    }
    const [rs, moved] = await Promise.all([Promise.all(attempts), Promise.all(transfers)]);
    const held = rs.reduce((a, r) => a + (r.ok ? r.reserved : 0), 0);
    console.log(`# ${rs.filter((r) => r.ok).length} calls holding ${held}, ${moved.filter(Boolean).length} transfers`);
    const sent = moved.reduce((a, m) => a + m, 0);
    const balance = (await s.ledger.balance(payer))!.credit;
    assert.equal(balance, 10 * UNIT - sent);
    assert.equal(await s.ledger.reserved(payer), held);
    assert.ok(held <= balance, `reserved ${held} within the balance ${balance}`);
    assert.ok(held + sent <= 10 * UNIT);
    const okCalls = rs.filter((r) => r.ok).length;
    assert.ok(okCalls > 0 && okCalls < 30, `${okCalls} calls accepted`);
    for (const r of rs) if (!r.ok) assert.deepEqual(r, { ok: false, status: 402, reason: 'insufficient credit' });
    assert.equal(nodeA.reservedFor(payer) + nodeB.reservedFor(payer), held);
    // every accepted call runs to its maxduration: together they are charged exactly what they held
    const before = balance;
    let charged = 0;
    for (let i = 0; i < 30; i++) {
      const node = i % 2 ? nodeB : nodeA;
      const call = node.get(`two-${i}`);
      if (!call) continue;
      await node.connected(`two-${i}`, '', { at: 0, onMaxDuration: () => undefined });
      const rec = await node.finish(`two-${i}`, '', { endAt: call.maxduration * 1000 + 50 });
      assert.equal(rec!.charged, call.reserved, 'a call is charged what it reserved');
      charged += rec!.charged;
    }
    assert.equal(charged, held);
    assert.equal((await s.ledger.balance(payer))!.credit, before - held);
    assert.equal(await s.ledger.reserved(payer), 0);
    assert.deepEqual(await s.ledger.audit(), []);
    nodeA.stop();
    nodeB.stop();
  } finally {
    await b.close();
  }
});

test('PostgreSQL, two nodes: a dead node’s call is billed once by a survivor, which frees its reservation', async (c) => {
  if (pg.skip) return c.skip(pg.skip);
  const s = pg.t!.srv.services;
  const b = await secondNode(s, s.storage.location);
  try {
    const payer = await account(s, 'deadpayer', 3 * UNIT);
    const rate = await rateFor(s, payer);
    let now = 1_800_000_000_000;
    const nodeA = new LiveCalls(s, { node: 'A', now: () => now, heartbeatMs: 1000 });
    const nodeB = new LiveCalls(b.services, { node: 'B', now: () => now, heartbeatMs: 1000 });
    const r = await nodeA.reserve({ callid: 'dead-1', userId: payer, caller: 'x', callee: '4900111', rate });
    assert.ok(r.ok);
    await nodeA.connected('dead-1', '', { onMaxDuration: () => undefined });
    now += 60_000;
    await nodeA.refresh(); // A's last sign of life: one minute into the call
    now += 2000;
    assert.deepEqual(await nodeB.recover({ deadOnly: true }), { closed: 0, charged: 0 }, 'A is not stale yet');
    now += 5000; // A stopped refreshing for 7 s > staleMs (3 s): B bills the minute
    const rec = await nodeB.recover({ deadOnly: true });
    assert.deepEqual(rec, { closed: 1, charged: 100_000 });
    const cdr = (await s.cdrs.byCallId('dead-1'))[0]!;
    assert.equal(cdr.duration, 60);
    assert.equal(cdr.reason, 'recovered from dead node A');
    assert.equal(await s.ledger.reserved(payer), 0, 'the reservation went with the charge');
    // A comes back and ends the call: nothing is charged twice
    const again = await nodeA.finish('dead-1');
    assert.equal(again!.created, false);
    assert.equal(again!.charged, 0);
    assert.equal((await s.ledger.balance(payer))!.credit, 3 * UNIT - 100_000);
    // own rows are not a survivor's business; an orphan reservation of a dead node is released
    await b.services.storage.db
      .insertInto('tb_reservations')
      .values({ userid: payer, callid: 'orphan', leg: '', amount: UNIT, node: 'C', created_at: 0, expires_at: now - 1 })
      .execute();
    await nodeB.recover({ deadOnly: true });
    assert.equal(await s.ledger.reserved(payer), 0);
    nodeA.stop();
    nodeB.stop();
  } finally {
    await b.close();
  }
});

test('PostgreSQL + Redis: a node that still announces itself is not dead, however stale its rows', async (c) => {
  if (pg.skip) return c.skip(pg.skip);
  const missing = await redisMissing();
  if (missing) return c.skip(missing);
  const s = pg.t!.srv.services;
  const b = await secondNode(s, s.storage.location);
  const prefix = testPrefix();
  const state = await openState({ redisUrl: REDIS_URL, prefix, nodeId: 'B2' });
  try {
    const payer = await account(s, 'alivepayer', 3 * UNIT);
    const rate = await rateFor(s, payer);
    let now = Date.now();
    const nodeA = new LiveCalls(s, { node: 'A2', now: () => now, heartbeatMs: 1000 });
    const nodeB = new LiveCalls({ ...b.services, state }, { node: 'B2', now: () => now, heartbeatMs: 1000 });
    assert.ok((await nodeA.reserve({ callid: 'alive-1', userId: payer, caller: 'x', callee: '4900111', rate })).ok);
    await nodeA.connected('alive-1', '', { onMaxDuration: () => undefined });
    // A lost the database (no refresh for a minute) but still announces itself in Redis
    const stats = { node: 'A2', worker: 0, pid: 1, startedAt: now, registrations: 0, liveCalls: 1 };
    const counters = { connectedCalls: 1, callsPerSecond: 0, callsAttempted: 1, apiRequests: 0, overloadRefused: 0 };
    await state.nodes.announce({ id: 'A2', at: Date.now(), ...stats, ...counters }, 60_000);
    now += 60_000;
    assert.deepEqual(await nodeB.recover({ deadOnly: true }), { closed: 0, charged: 0 }, 'A2 is alive: not billed');
    assert.ok((await s.ledger.reserved(payer)) > 0, 'its reservation is kept');
    // A is back: it ends the call and bills the whole minute itself
    const done = await nodeA.finish('alive-1');
    assert.equal(done!.created, true);
    assert.equal((await s.cdrs.byCallId('alive-1'))[0]!.duration, 60);
    // a node that no longer announces itself is dead: its stale rows are billed by the survivor
    assert.ok((await nodeA.reserve({ callid: 'alive-2', userId: payer, caller: 'x', callee: '4900111', rate })).ok);
    await nodeA.connected('alive-2', '', { onMaxDuration: () => undefined });
    await state.nodes.remove('A2');
    now += 30_000;
    const rec = await nodeB.recover({ deadOnly: true });
    assert.equal(rec.closed, 1);
    assert.equal((await s.cdrs.byCallId('alive-2'))[0]!.reason, 'recovered from dead node A2');
    nodeA.stop();
    nodeB.stop();
  } finally {
    await state.close();
    await dropPrefix(prefix);
    await b.close();
  }
});
