/** LiveCalls: shared credit reservations, maxduration cut, finish charged once, crash recovery (incl. a real SIGKILL). */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { LiveCalls } from '../../src/domain/calls/livecalls.js';
import { setRates, sleep } from './helpers.js';
import type { Rate } from '../../src/domain/rating/rate.js';

let t: TestServer;
let uid: number;
let rate: Rate;
const UNIT = 1_000_000;

before(async () => {
  t = await startTestServer({ usesip: 'false' });
  const s = t.srv.services;
  uid = (await s.users.create({ username: 'erin', password: 'erinpw1' })).id;
  const cur = (await s.ledger.balance(uid))!.currency;
  await setRates(s, cur, [{ prefix: '4900', price: 60 * UNIT }]); // 1 unit per second, 1/1
  rate = (await s.rating.quote({ id: uid, country: '' }, '4900111')).rate;
});
after(async () => t.stop());

const cdrs = (callid: string) =>
  t.srv.services.storage.db.selectFrom('tb_cdrs').selectAll().where('callid', '=', callid).execute();
const credit = async () => (await t.srv.services.ledger.balance(uid))!.credit;

test('ten parallel calls share one reservation: together they never get more seconds than the balance pays', async () => {
  const s = t.srv.services;
  await s.ledger.post({ userId: uid, amount: 10 * UNIT, reason: 'test' });
  const live = new LiveCalls(s);
  const rs = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      live.reserve({ callid: `par-${i}`, userId: uid, caller: 'erin', callee: '4900111', rate }),
    ),
  );
  const okOnes = rs.filter((r) => r.ok) as Array<{ ok: true; maxduration: number; reserved: number }>;
  const total = okOnes.reduce((a, r) => a + r.maxduration, 0);
  assert.equal(total, 10, 'the seconds of all accepted calls add up to the 10 s the credit pays');
  assert.equal(live.reservedFor(uid), 10 * UNIT);
  const refused = rs.filter((r) => !r.ok);
  assert.equal(refused.length, 10 - okOnes.length);
  for (const r of refused) assert.deepEqual(r, { ok: false, status: 402, reason: 'insufficient credit' });
  // the refusals are on record with cost 0
  assert.ok(refused.length > 0);
  const rows = await s.storage.db.selectFrom('tb_cdrs').selectAll().where('callid', 'like', 'par-%').execute();
  assert.equal(rows.length, refused.length);
  for (const r of rows) assert.equal(Number(r.cost), 0);
  // releasing the reservation gives the credit back to new calls
  for (let i = 0; i < 10; i++) await live.release(`par-${i}`);
  assert.equal(live.reservedFor(uid), 0);
  const again = await live.reserve({ callid: 'par-after', userId: uid, caller: 'erin', callee: '4900111', rate });
  assert.equal(again.ok && again.maxduration, 10);
  await live.release('par-after');
  assert.equal((await s.storage.db.selectFrom('tb_livecalls').selectAll().execute()).length, 0);
});

test('a second call while the first holds the whole balance is refused 402; the first is cut at maxduration and charged once', async () => {
  const s = t.srv.services;
  const start = await credit();
  const live = new LiveCalls(s);
  const r1 = await live.reserve({ callid: 'cut-1', userId: uid, caller: 'erin', callee: '4900111', rate });
  assert.equal(r1.ok && r1.maxduration, start / UNIT);
  const r2 = await live.reserve({ callid: 'cut-2', userId: uid, caller: 'erin', callee: '4900111', rate });
  assert.equal(r2.ok, false);
  // accelerate: reserve a 1-second call by limiting the credit view, via a fresh account
  const other = (await s.users.create({ username: 'fred', password: 'fredpw1' })).id;
  await s.ledger.post({ userId: other, amount: 1 * UNIT, reason: 'test' });
  const r3 = await live.reserve({ callid: 'cut-3', userId: other, caller: 'fred', callee: '4900111', rate });
  assert.equal(r3.ok && r3.maxduration, 1);
  let fired = 0;
  await live.connected('cut-3', '', { onMaxDuration: () => void fired++ });
  await sleep(1300);
  assert.equal(fired, 1, 'the cut fires once at maxduration');
  const rec = await live.finish('cut-3', '', { reason: 'maxduration reached' });
  assert.equal(rec?.cdr.duration, 1);
  assert.equal(rec?.charged, UNIT);
  assert.equal(await live.finish('cut-3'), undefined, 'a second finish does nothing');
  assert.equal((await s.ledger.balance(other))!.credit, 0);
  await live.release('cut-1');
});

test('recover(): a leftover row is billed from connect_at to updated_at, deleted, and a repeated recovery charges nothing', async () => {
  const s = t.srv.services;
  await s.ledger.post({ userId: uid, amount: 20 * UNIT, reason: 'test' });
  const before = await credit();
  const now = Date.now();
  const row = {
    callid: 'left-1',
    userid: uid,
    caller: 'erin',
    callee: '4900111',
    route: 'gw:x',
    leg: '',
    state: 'connected',
    start_at: now - 9000,
    connect_at: now - 8000,
    maxduration: 100,
    reserved: 0,
    rate_json: JSON.stringify(rate),
    updated_at: now - 3000,
  };
  await s.storage.db.insertInto('tb_livecalls').values(row).execute();
  // an unanswered leftover: CDR with cost 0
  await s.storage.db
    .insertInto('tb_livecalls')
    .values({ ...row, callid: 'left-2/a', leg: 'a', state: 'setup', connect_at: null })
    .execute();
  const live = new LiveCalls(s);
  const r = await live.recover();
  assert.deepEqual(r, { closed: 2, charged: 5 * UNIT });
  const [c1] = await cdrs('left-1');
  assert.equal(c1!.duration, 5);
  assert.equal(c1!.reason, 'recovered after restart');
  const [c2] = await cdrs('left-2');
  assert.equal(c2!.leg, 'a');
  assert.equal(Number(c2!.cost), 0);
  assert.equal(await credit(), before - 5 * UNIT);
  assert.equal((await s.storage.db.selectFrom('tb_livecalls').selectAll().execute()).length, 0);
  // the same row again (e.g. the process died between the CDR and the delete): nothing charged twice
  await s.storage.db.insertInto('tb_livecalls').values(row).execute();
  assert.deepEqual(await live.recover(), { closed: 1, charged: 0 });
  assert.equal(await credit(), before - 5 * UNIT);
  assert.equal((await cdrs('left-1')).length, 1);
});

test('SIGKILL mid-call: after restart the call is billed from its last refresh, once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'voxswitch-crash-'));
  try {
    const a = await startTestServer({ usesip: 'false' }, dir);
    const dan = (await a.srv.services.users.create({ username: 'dan', password: 'danpw12' })).id;
    await a.srv.services.ledger.post({ userId: dan, amount: 100 * UNIT, reason: 'test' });
    await setRates(a.srv.services, (await a.srv.services.ledger.balance(dan))!.currency, [
      { prefix: '4900', price: 60 * UNIT },
    ]);
    await a.stop();
    const child = spawn(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), 'crash-child.js'), dir], {
      env: { ...process.env, CRASH_CHILD: 'live' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stderr.on('data', (d) => (out += d));
    const connected = await new Promise<boolean>((res) => {
      const timer = setTimeout(() => res(false), 15000);
      child.stdout.on('data', (d) => {
        out += d;
        if (String(d).includes('CONNECTED')) {
          clearTimeout(timer);
          res(true);
        }
      });
      child.on('exit', () => res(false));
    });
    if (!connected) child.kill('SIGKILL');
    assert.ok(connected, `the child server did not start: ${out.slice(-500)}`);
    const t0 = Date.now();
    await sleep(2500);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const elapsed = (Date.now() - t0) / 1000;
    const b = await startTestServer({ usesip: 'false' }, dir);
    try {
      // the server recovers leftover calls as it starts (startServer → LiveCalls.recover)
      const live = new LiveCalls(b.srv.services);
      assert.equal((await b.srv.services.storage.db.selectFrom('tb_livecalls').selectAll().execute()).length, 0);
      const [cdr] = await b.srv.services.storage.db
        .selectFrom('tb_cdrs')
        .selectAll()
        .where('callid', '=', 'crash-call-1')
        .execute();
      assert.ok(cdr, 'the killed call has its CDR');
      assert.ok(
        cdr!.duration >= 2 && cdr!.duration <= Math.ceil(elapsed),
        `duration ${cdr!.duration} (killed after ${elapsed} s, refresh every 200 ms)`,
      );
      assert.equal(Number(cdr!.cost), cdr!.duration * UNIT);
      assert.equal((await b.srv.services.ledger.balance(dan))!.credit, 100 * UNIT - cdr!.duration * UNIT);
      assert.deepEqual(await live.recover(), { closed: 0, charged: 0 });
    } finally {
      await b.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
