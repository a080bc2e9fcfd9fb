/** LiveCalls on PostgreSQL: reservation rows, refresh (IN list), finish charged once, recovery idempotent. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usePgTestServer } from '../helpers/pg.js';
import { LiveCalls } from '../../src/domain/calls/livecalls.js';
import { setRates } from './helpers.js';

const pg = usePgTestServer('calls', { usesip: 'false' });
const UNIT = 1_000_000;

test('PostgreSQL: reserve / connected / refresh / finish / recover', async (c) => {
  if (pg.skip) return c.skip(pg.skip);
  const s = pg.t!.srv.services;
  assert.equal(s.storage.dialect, 'pg');
  const uid = (await s.users.create({ username: 'pgcall', password: 'pgcallpw' })).id;
  const cur = (await s.ledger.balance(uid))!.currency;
  await setRates(s, cur, [{ prefix: '4900', price: 60 * UNIT }]);
  await s.ledger.post({ userId: uid, amount: 30 * UNIT, reason: 'test' });
  const rate = (await s.rating.quote({ id: uid, country: '' }, '4900111')).rate;
  let now = 1_000_000_000_000;
  const live = new LiveCalls(s, { now: () => now });
  const r = await live.reserve({ callid: 'pg-1', userId: uid, caller: 'pgcall', callee: '4900111', rate });
  assert.equal(r.ok && r.maxduration, 30);
  const r2 = await live.reserve({ callid: 'pg-2', userId: uid, caller: 'pgcall', callee: '4900111', rate });
  assert.equal(r2.ok, false);
  await live.connected('pg-1', '', { onMaxDuration: () => undefined });
  now += 7000;
  await live.refresh();
  const row = await s.storage.db
    .selectFrom('tb_livecalls')
    .selectAll()
    .where('callid', '=', 'pg-1')
    .executeTakeFirstOrThrow();
  assert.equal(Number(row.updated_at), now);
  assert.equal(Number(row.reserved), 30 * UNIT);
  // a restart: a fresh LiveCalls recovers the row (7 s), a second recovery charges nothing
  const fresh = new LiveCalls(s);
  assert.deepEqual(await fresh.recover(), { closed: 1, charged: 7 * UNIT });
  assert.deepEqual(await fresh.recover(), { closed: 0, charged: 0 });
  // the original process finishing later (it did not crash after all) charges nothing again
  now += 3000;
  const rec = await live.finish('pg-1');
  assert.equal(rec?.created, false);
  assert.equal(rec?.charged, 0);
  assert.equal((await s.ledger.balance(uid))!.credit, 23 * UNIT);
  assert.equal(live.reservedFor(uid), 0);
});
